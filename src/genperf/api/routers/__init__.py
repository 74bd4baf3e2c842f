"""One router per resource; ``genperf.api.app`` mounts them."""
