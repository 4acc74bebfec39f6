"""The SAC losses as pure functions: explicit inputs, numbers worked out by hand.

The discrete critic runs on a stand-in agent (a linear head) to show that the losses need only
what `AgentView` names, not the SACAgent.
"""

import ast
import math
from pathlib import Path
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hiljax.agents.sac_losses import Latents, discrete_critic_loss, temperature_loss

AGENTS = Path(__file__).resolve().parents[1] / "hiljax" / "agents"


def test_temperature_loss_by_hand():
    params = {"log_alpha": jnp.asarray(math.log(2.0), jnp.float32)}
    log_probs = jnp.asarray([-1.0, -3.0])
    loss, (metrics, outputs) = temperature_loss(params, log_probs, 0.5)
    # alpha = 2: mean(-2 * (-1 + 0.5), -2 * (-3 + 0.5)) = mean(1, 5) = 3
    np.testing.assert_allclose(loss, 3.0, rtol=1e-6)
    np.testing.assert_allclose(metrics["temperature"], 2.0, rtol=1e-6)
    assert outputs is None
    # d/d log_alpha of -alpha * mean(log_probs + H) = -2 * (-1.5) = 3: descent lowers alpha,
    # as it must when the policy's entropy (2) is above the target (0.5).
    grad = jax.grad(lambda p: temperature_loss(p, log_probs, 0.5)[0])(params)
    np.testing.assert_allclose(grad["log_alpha"], 3.0, rtol=1e-6)


def test_temperature_loss_stops_gradient_into_log_probs():
    params = {"log_alpha": jnp.zeros(())}
    grad = jax.grad(lambda lp: temperature_loss(params, lp, 0.0)[0])(jnp.ones(4))
    np.testing.assert_array_equal(grad, 0.0)


class _LinearHead:
    """q(x) = x @ params["w"]: a discrete critic whose outputs are easy to work out."""

    def apply(self, variables, latent):
        return latent @ variables["params"]["w"]


def _stand_in_agent():
    w_target = jnp.asarray([[2.0, 0.0, 0.0], [0.0, 3.0, 1.0]])  # q'(x) = (2 x0, 3 x1, x1)
    return SimpleNamespace(
        config=SimpleNamespace(discount=0.5, num_discrete_actions=3),
        nets=SimpleNamespace(discrete_critic=_LinearHead()),
        target_params={"discrete_critic": {"w": w_target}},
    )


@pytest.mark.parametrize("dones, expected", [((0.0, 0.0), 1.93), ((1.0, 0.0), 0.205)])
def test_discrete_critic_loss_by_hand(dones, expected):
    params = {"w": jnp.asarray([[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]])}  # q(x) = (x0, x1, 0.5 x0)
    latents = Latents(observation=jnp.asarray([[1.0, 2.0], [3.0, 0.0]]),
                      next_observation=jnp.asarray([[0.0, 1.0], [2.0, 0.0]]),
                      next_observation_target=jnp.asarray([[1.0, 1.0], [0.0, 2.0]]))
    batch = {"actions": jnp.asarray([[0.3, 2.0], [-0.2, 1.0]]),  # gripper commands 2 and 1
             "rewards": jnp.asarray([1.0, 0.5]), "discrete_penalty": jnp.asarray([-0.1, 0.0]),
             "dones": jnp.asarray(dones)}
    loss, (metrics, _) = discrete_critic_loss(params, _stand_in_agent(), batch, latents)
    # Double DQN. Online argmax on next: q(0, 1) = (0, 1, 0) -> 1; q(2, 0) = (2, 0, 1) -> 0.
    # Target head values them: q'(1, 1)[1] = 3; q'(0, 2)[0] = 0 (its own max, 6, is not used).
    # y = r + penalty + (1 - done) * 0.5 * value = (2.4, 0.5), or (0.9, 0.5) when row 0 is done.
    # Taken: q(1, 2)[2] = 0.5; q(3, 0)[1] = 0.  Loss = mean((0.5 - y0)^2, (0 - 0.5)^2).
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    np.testing.assert_allclose(metrics["discrete_q_mean"], 0.25, rtol=1e-6)


def _agents_imports(path: Path) -> set[str]:
    """Sibling modules of hiljax.agents that `path` imports, TYPE_CHECKING blocks included."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 1 or module.startswith("hiljax.agents"):
                base = module.removeprefix("hiljax.agents").lstrip(".")
                names = [base] if base else [alias.name for alias in node.names]
                out.update(n.split(".")[0] for n in names)
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[2] for a in node.names
                       if a.name.startswith("hiljax.agents."))
    return out & {p.stem for p in AGENTS.glob("*.py")}


def test_agents_modules_import_no_cycle():
    graph = {p.stem: _agents_imports(p) - {p.stem} for p in AGENTS.glob("*.py")}

    def reachable(start):
        seen, todo = set(), list(graph[start])
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(graph.get(name, ()))
        return seen

    assert {"sac", "sac_losses"} <= graph.keys()
    cycles = [name for name in graph if name in reachable(name)]
    assert not cycles, f"import cycle through {cycles}: {graph}"
    assert "sac" not in graph["sac_losses"]
