"""Make the certificates, tokens and CURVE keys of a learner and its actors on other machines.

    python -m hiljax.keys --out keys --actors actor1 actor2 --host learner.example 10.0.0.5

writes one folder per machine under --out (transport/security.py: `generate_keys`) and prints
what to copy where and the settings that use it. Run it again with new actor names to add
actors: the CA and the learner's keys are kept.
"""

import argparse
import logging
import sys
from pathlib import Path

from transport.security import KeySet, generate_keys

log = logging.getLogger(__name__)


def instructions(keys: KeySet) -> str:
    """What to copy to which machine, and the overrides that use the copied files (paths as
    they are here: copy each folder to the same relative place, or edit the paths)."""
    learner = keys.learner
    lines = [
        f"Keys are in {keys.out}/ (secret files are 0600, their folders 0700).",
        (f"  {keys.ca}/  keep it here and private: its ca.key signs the keys of actors added "
         "later (python -m hiljax.keys --out ... --actors NEW_NAME)"),
        f"  {learner}/  copy to the learner machine",
        *(f"  {folder}/  copy to {name}'s machine, and nowhere else"
          for name, folder in keys.actors.items()),
        ("  (copy each folder to the same path, relative to where hiljax runs, as here: the "
         "settings below name it; e.g. rsync -a keys/actor1 HOST:hiljax/keys/)"),
        "",
        "gRPC (TLS + mutual TLS + per-actor tokens), learner:",
        _command("learner", "", {
            "tls_cert": learner / "tls.crt", "tls_key": learner / "tls.key",
            "tls_client_ca": learner / "ca.crt", "tokens_file": learner / "tokens.json"}),
        *(_command("actor", "", {
            "tls_ca": folder / "ca.crt", "tls_cert": folder / "tls.crt",
            "tls_key": folder / "tls.key", "token_file": folder / "token"}, name)
          for name, folder in keys.actors.items()),
        "",
        "ZeroMQ (CURVE), learner:",
        _command("learner", "--transport zmq ", {
            "curve_server_secret": learner / "curve" / "private_keys" / "learner.key_secret",
            "curve_clients_dir": learner / "curve" / "public_keys"}),
        *(_command("actor", "--transport zmq ", {
            "curve_server_public": folder / "curve" / "public_keys" / "learner.key",
            "curve_client_secret": folder / "curve" / "private_keys" / f"{name}.key_secret"},
            name) for name, folder in keys.actors.items()),
        "",
        ("(CONFIG is a train config; with a learner-only config file, drop the 'learner.' "
         "prefix of the security settings.) Restart the learner after adding actors."),
    ]
    return "\n".join(lines)


def _command(process: str, flags: str, security: dict, name: str | None = None) -> str:
    """One `python -m hiljax.<process>` line with its security overrides."""
    where = ("actor_learner_config.learner_host=0.0.0.0 actor_learner_config.learner_port=50051 "
             if process == "learner" else "--learner-address LEARNER_HOST:50051 ")
    overrides = " ".join(f"{process}.security.{key}={path}" for key, path in security.items())
    return (f"  {name + ': ' if name else ''}python -m hiljax.{process} --config CONFIG "
            f"{flags}{where}{overrides}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="keys", help="folder to write (default: keys)")
    parser.add_argument("--actors", nargs="+", required=True, metavar="NAME",
                        help="one name per actor (letters, digits, . _ : + -)")
    parser.add_argument("--host", nargs="*", default=[], metavar="NAME_OR_IP",
                        help="names and addresses actors use to reach the learner (its "
                             "certificate covers these plus localhost and 127.0.0.1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        keys = generate_keys(Path(args.out), args.actors, args.host)
    except ValueError as error:
        log.error("no keys written: %s", error)
        return 2
    print(instructions(keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
