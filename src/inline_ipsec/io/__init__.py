"""I/O stage: the thin adapters around the sans-I/O gateway: links (in memory, UDP), the IKE UDP
port, the control socket, the `run` loop, CLI commands, show renderers, the demo configuration
and traffic builders."""
