"""Start-up hook of every Python process a probed script starts (the runner puts this folder first on PYTHONPATH).

Python imports `sitecustomize` at start-up, so spawned workers, torchrun's ranks and scripts run by the script
are instrumented too. The hooks are installed when the process imports torch, so Python processes that never
use torch pay nothing. Any other sitecustomize on the path still runs. Nothing here may break the process.
"""
import importlib.machinery
import importlib.util
import os
import sys


def _run_the_shadowed_sitecustomize() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    path = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is not None and spec.loader is not None:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


def _probe_child():
    # The same gradlint as the parent's, even where this Python has another one (or none) installed.
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    sys.path.insert(0, root)
    try:
        from gradlint.probe import child
    finally:
        sys.path.remove(root)
    return child


class _WhenTorchLoads:
    """A meta path finder that lets torch load as usual, then starts the probe in this process."""

    def find_spec(self, name, path=None, target=None):
        if name != "torch":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("torch")
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def load_then_start(module):
            load(module)
            _start()

        spec.loader.exec_module = load_then_start
        return spec


def _start() -> None:
    try:
        _probe_child().start()
    except Exception as exc:  # the script must run even where the probe cannot watch it
        print(f"gradlint probe: not watching process {os.getpid()}: {exc}", file=sys.stderr)


try:
    _run_the_shadowed_sitecustomize()
finally:
    if os.environ.get("GRADLINT_PROBE_RECORDS"):
        if "torch" in sys.modules:
            _start()
        else:
            sys.meta_path.insert(0, _WhenTorchLoads())
