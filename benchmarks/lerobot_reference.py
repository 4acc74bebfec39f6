#!/usr/bin/env python
"""LeRobot's SAC learner, timed the way benchmarks/learner_throughput.py times hiljax's: UTD
rounds per second of LeRobot's own loop body (lerobot.rl.learner, 0.4.x): `utd_ratio` critic
(+ discrete critic) steps each sampled from LeRobot's ReplayBuffer, target updates, then actor
and temperature, with LeRobot's optimisers and gradient clipping.

Runs in an environment that has lerobot and torch - NEVER hiljax's (torch is not a dependency):

    python -m venv ../lrenv && ../lrenv/bin/pip install torch lerobot==0.4.4
    ../lrenv/bin/python benchmarks/lerobot_reference.py --configs state [--device cuda]

learner_throughput.py calls it with --reference-python. Only the state config is measured: the
image configs need the hub's helper2424/resnet10, which cannot be downloaded here. The last line
is one line of JSON: {config: {"steps_per_s": ..., "label": ...}}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

STATE_DIM, ACTION_DIM, NUM_DISCRETE, UTD_RATIO = 18, 3, 3, 2
CONFIGS = {"state": {"batch_size": 256, "latent_dim": 256}}


def build(config: dict, device: str):
    import torch
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.sac.configuration_sac import SACConfig
    from lerobot.policies.sac.modeling_sac import SACPolicy

    cfg = SACConfig(
        input_features={"observation.state": PolicyFeature(FeatureType.STATE, (STATE_DIM,))},
        output_features={"action": PolicyFeature(FeatureType.ACTION, (ACTION_DIM,))},
        num_discrete_actions=NUM_DISCRETE, latent_dim=config["latent_dim"], utd_ratio=UTD_RATIO,
        device=device, storage_device=device, use_torch_compile=False,
        dataset_stats=None)
    policy = SACPolicy(cfg).to(device)
    policy.train()
    # As lerobot.rl.learner.make_optimizers_and_scheduler.
    shared = cfg.shared_encoder
    optimizers = {
        "actor": torch.optim.Adam([p for n, p in policy.actor.named_parameters()
                                   if not shared or not n.startswith("encoder")],
                                  lr=cfg.actor_lr),
        "critic": torch.optim.Adam(policy.critic_ensemble.parameters(), lr=cfg.critic_lr),
        "discrete_critic": torch.optim.Adam(policy.discrete_critic.parameters(),
                                            lr=cfg.critic_lr),
        "temperature": torch.optim.Adam([policy.log_alpha], lr=cfg.critic_lr),
    }
    return cfg, policy, optimizers


def fill_buffer(device: str, capacity: int = 2000):
    import torch
    from lerobot.rl.buffer import ReplayBuffer

    buffer = ReplayBuffer(capacity, device=device, state_keys=["observation.state"],
                          storage_device=device, use_drq=False)
    generator = torch.Generator().manual_seed(0)
    for i in range(capacity):
        state = {"observation.state": torch.randn(1, STATE_DIM, generator=generator)}
        next_state = {"observation.state": torch.randn(1, STATE_DIM, generator=generator)}
        action = torch.cat([torch.rand(1, ACTION_DIM, generator=generator) * 2 - 1,
                            torch.randint(0, NUM_DISCRETE, (1, 1), generator=generator)], dim=1)
        buffer.add(state, action, float(i % 100 == 99), next_state, done=i % 100 == 99,
                   truncated=False, complementary_info={"discrete_penalty": torch.zeros(1)})
    return buffer


def one_round(cfg, policy, optimizers, iterator) -> None:
    """lerobot.rl.learner.add_actor_information_and_train's optimisation step, trimmed of its
    logging (the same forward calls, backward passes, clipping and optimiser steps)."""
    import torch

    clip = cfg.grad_clip_norm
    for step in range(UTD_RATIO):
        batch = next(iterator)
        forward_batch = {"action": batch["action"], "reward": batch["reward"],
                         "state": batch["state"], "next_state": batch["next_state"],
                         "done": batch["done"], "observation_feature": None,
                         "next_observation_feature": None,
                         "complementary_info": batch["complementary_info"]}
        for name, params in (("critic", policy.critic_ensemble.parameters()),
                             ("discrete_critic", policy.discrete_critic.parameters())):
            loss = policy.forward(forward_batch, model=name)[f"loss_{name}"]
            optimizers[name].zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters=params, max_norm=clip)
            optimizers[name].step()
        if step < UTD_RATIO - 1:
            policy.update_target_networks()
    loss = policy.forward(forward_batch, model="actor")["loss_actor"]
    optimizers["actor"].zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters=policy.actor.parameters(), max_norm=clip)
    optimizers["actor"].step()
    loss = policy.forward(forward_batch, model="temperature")["loss_temperature"]
    optimizers["temperature"].zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters=[policy.log_alpha], max_norm=clip)
    optimizers["temperature"].step()
    policy.update_target_networks()


def measure(name: str, device: str, windows: int, window_s: float) -> dict:
    import lerobot
    import torch

    config = CONFIGS[name]
    cfg, policy, optimizers = build(config, device)
    iterator = fill_buffer(device).get_iterator(batch_size=config["batch_size"],
                                                async_prefetch=False, queue_size=2)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(3):  # warm-up
        one_round(cfg, policy, optimizers, iterator)
    sync()
    rates = []
    for _ in range(windows):
        rounds, started = 0, time.perf_counter()
        while time.perf_counter() - started < window_s:
            one_round(cfg, policy, optimizers, iterator)
            rounds += 1
        sync()
        rates.append(rounds / (time.perf_counter() - started))
    return {"steps_per_s": statistics.median(rates), "windows_steps_per_s": rates,
            "label": f"LeRobot {lerobot.__version__}, torch {torch.__version__} on {device}, "
                     f"{torch.get_num_threads()} threads"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="state")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    results = {}
    for name in args.configs.split(","):
        if name not in CONFIGS:
            print(f"{name}: not measured (needs the hub's helper2424/resnet10)", file=sys.stderr)
            continue
        results[name] = measure(name, args.device, 2 if args.quick else 5,
                                1.0 if args.quick else 3.0)
        print(f"{name}: {results[name]['steps_per_s']:.2f} steps/s "
              f"({results[name]['label']})", file=sys.stderr)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
