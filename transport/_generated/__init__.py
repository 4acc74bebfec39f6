"""protoc output for proto/services.proto; regenerate with `python -m transport.gen_proto`."""
