"""Actor <-> learner transport (gRPC LearnerService and ZeroMQ). Knows nothing of JAX or hiljax."""
