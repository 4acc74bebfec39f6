"""Actor <-> learner transport (gRPC LearnerService and ZeroMQ). Knows nothing of JAX or hiljax.

Start at `transport.factory` (make_learner_transport / make_actor_transport) and
`transport.interface` (the shared interface); see transport/README.md for the protocol.
"""
