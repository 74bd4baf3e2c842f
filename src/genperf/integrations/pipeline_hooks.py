"""Hooks on a diffusers pipeline that report to the call being recorded on this thread.

Installed once per pipeline and left in place between calls; outside a monitored call they
return at once. Three kinds, chosen because every diffusers pipeline goes through them:

- ``pipe.encode_prompt`` (and ``encode_image`` where present) wrapped on the instance;
- a forward pre-hook on each denoiser (``transformer``, ``transformer_2``, ``unet`` ...): which
  expert ran, and when denoising and each step began;
- ``pipe.vae.decode`` wrapped on the instance (diffusers' own offload hooks live inside
  ``decode``, so they keep working).

A hook that fails logs and lets the generation go on: the monitor must never break it.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

from genperf.integrations.call_recorder import IMAGE_ENCODE, TEXT_ENCODE, CallRecorder
from genperf.integrations.pipeline_inspect import components, denoisers

logger = logging.getLogger("genperf.integrations")


class PipelineHooks:
    """The hooks of one pipeline; ``recorder`` is the call being recorded on this thread."""

    def __init__(self, pipe: Any) -> None:
        self._pipe = pipe
        self._local = threading.local()
        self._handles: list[Any] = []
        self._wrapped: list[tuple[Any, str, Callable[..., Any]]] = []
        self._installed_on: tuple[int, ...] = ()

    @property
    def recorder(self) -> CallRecorder | None:
        rec: CallRecorder | None = getattr(self._local, "recorder", None)
        return rec

    @recorder.setter
    def recorder(self, value: CallRecorder | None) -> None:
        self._local.recorder = value

    def install(self) -> None:
        """Install the hooks, or reinstall them if a component was replaced since."""
        identity = self._identity()
        if identity == self._installed_on:
            return
        self.remove()
        hooked: set[int] = set()
        for name, module in denoisers(self._pipe).items():
            register = getattr(module, "register_forward_pre_hook", None)
            if callable(register) and id(module) not in hooked:  # one module in two roles
                hooked.add(id(module))
                self._handles.append(register(self._forward_hook(name)))
        self._wrap(self._pipe, "encode_prompt", TEXT_ENCODE)
        self._wrap(self._pipe, "encode_image", IMAGE_ENCODE)
        vae = components(self._pipe).get("vae")
        if vae is not None:
            self._wrap_decode(vae)
        self._installed_on = identity

    def remove(self) -> None:
        """Take every hook off the pipeline."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for obj, name, wrapper in self._wrapped:
            if obj.__dict__.get(name) is wrapper:  # leave a later wrapper (someone else's) alone
                del obj.__dict__[name]
        self._wrapped.clear()
        self._installed_on = ()

    # --- the hooks ----------------------------------------------------------------------------

    def _identity(self) -> tuple[int, ...]:
        """Changes when a component is replaced or compiled in place (hooks must follow)."""
        comps = components(self._pipe)
        compiled = (getattr(m, "_compiled_call_impl", None) is not None for m in comps.values())
        return (id(self._pipe), *(id(comps[k]) for k in sorted(comps)), *map(int, compiled))

    def _forward_hook(self, name: str) -> Callable[..., None]:
        def hook(_module: Any, _args: Any) -> None:
            rec = self.recorder
            if rec is not None:
                _safely(rec.denoiser_forward, name)

        return _not_compiled(hook)

    def _wrap(self, obj: Any, name: str, phase: str) -> None:
        original = getattr(obj, name, None)
        if not callable(original):
            return

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            rec = self.recorder
            if rec is None:
                return original(*args, **kwargs)
            _safely(rec.encode_started, phase)
            result = original(*args, **kwargs)  # a failure leaves the phase open: it failed there
            _safely(rec.encode_finished, phase)
            return result

        obj.__dict__[name] = wrapper  # an instance attribute shadows the class's method
        self._wrapped.append((obj, name, wrapper))

    def _wrap_decode(self, vae: Any) -> None:
        original = getattr(vae, "decode", None)
        if not callable(original):
            return

        @functools.wraps(original)
        def decode(*args: Any, **kwargs: Any) -> Any:
            rec = self.recorder
            if rec is not None:
                _safely(rec.decode_started)
            return original(*args, **kwargs)

        vae.__dict__["decode"] = decode
        self._wrapped.append((vae, "decode", decode))


def _safely(fn: Callable[..., None], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        logger.warning("genperf hook failed; the generation goes on", exc_info=True)


def _not_compiled(fn: Callable[..., None]) -> Callable[..., None]:
    """Keep torch.compile (dynamo) out of the hook: it only reads a clock.

    Only where dynamo is already loaded (a module was compiled): importing it costs 1.5 s.
    """
    import sys

    if "torch._dynamo" not in sys.modules:
        return fn
    torch = sys.modules.get("torch")
    disable = getattr(getattr(torch, "compiler", None), "disable", None)
    if callable(disable):
        try:
            wrapped: Callable[..., None] = disable(fn)
            return wrapped
        except Exception:
            logger.debug("torch.compiler.disable failed", exc_info=True)
    return fn
