"""The ONNX Runtime backend: runs the exported graphs in ``<checkpoint>/onnx/`` with no torch import.

Only numpy and onnxruntime are imported here (torch never, directly or indirectly), so the inference
path works in an install without the torch extra.

* One graph per part (``encoder.onnx``, ``decoder.onnx``, ``prior_forward.onnx``,
  ``prior_inverse.onnx``, ``classifier.onnx``), written by ``vaezoo export``.
* Each graph carries its own description in ``metadata_props`` (see :data:`META_KEY`); on load it is
  checked against the checkpoint's config.json, so graphs of another model, or stale graphs of a
  retrained one, are refused with a one-line error.
* Sessions are created lazily, once per graph per process, and reused (a module-level cache keyed by
  file, size, mtime, providers and threads), so repeated ``vaezoo.load`` calls are cheap.
* Threads: ``intra_op_num_threads`` = physical cores available to this process (``VAEZOO_THREADS``
  overrides), one inter-op thread, sequential execution: the graphs are chains.
* Devices: ``cpu``; ``cuda`` / ``cuda:N`` asks for the CUDA execution provider and checks
  ``session.get_providers()[0]`` (ONNX Runtime silently falls back to CPU otherwise) and raises when
  CUDA is not actually used; ``auto`` uses CUDA when it works and otherwise says on stderr that it runs
  on CPU. On CUDA, batches of at least :data:`IOBIND_MIN_BATCH` go through IO binding (outputs are
  allocated on the device and copied back once).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

from vaezoo.errors import UsageError, VaezooError
from vaezoo.store.checkpoint import ONNX_DIR

# -- the metadata schema every exported graph carries (written by vaezoo.export, read here) ----------
META_KEY = "vaezoo"              # one JSON object with everything (see vaezoo.export.metadata)
META_FORMAT = "vaezoo-onnx/1"
# Flat copies of the most used fields, for tools that show metadata_props as a table (Netron, ...).
FLAT_KEYS = ("vaezoo.model_id", "vaezoo.part", "vaezoo.version", "vaezoo.input_shape", "vaezoo.pixel_scale",
             "vaezoo.likelihood", "vaezoo.decoder_output", "vaezoo.latent_dim", "vaezoo.labels", "vaezoo.precision")

CORE_PARTS = ("encoder", "decoder", "prior_forward", "prior_inverse")
IOBIND_MIN_BATCH = 256
CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"

_SESSIONS: dict[tuple, object] = {}  # (path, size, mtime_ns, providers, threads) -> InferenceSession
_NOTES_SHOWN: set[str] = set()


def graph_path(folder: Path, part: str, precision: str = "fp32") -> Path:
    """``onnx/<part>.onnx`` (fp32) or ``onnx/<part>.<precision>.onnx`` (fp16, int8 variants)."""
    suffix = "" if precision == "fp32" else f".{precision}"
    return Path(folder) / ONNX_DIR / f"{part}{suffix}.onnx"


def note(msg: str) -> None:
    """A note on stderr, once per process."""
    if msg not in _NOTES_SHOWN:
        _NOTES_SHOWN.add(msg)
        print(f"note: {msg}", file=sys.stderr)


def physical_cores() -> int:
    """Physical cores this process may run on (SMT siblings counted once); VAEZOO_THREADS overrides."""
    env = os.environ.get("VAEZOO_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise UsageError(f"VAEZOO_THREADS must be an integer, not {env!r}") from None
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
    cores = set()
    for cpu in cpus:
        try:
            siblings = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list").read_text().strip()
        except OSError:
            siblings = str(cpu)
        cores.add(siblings)
    return max(1, len(cores))


def import_onnxruntime():
    """The onnxruntime module, or a one-line UsageError saying how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise UsageError("the onnx backend needs ONNX Runtime (pip install 'vaezoo[cpu]' or 'vaezoo[gpu]'), "
                         "or use --backend torch") from None
    return onnxruntime


def read_metadata(path: Path, session=None) -> dict:
    """The ``vaezoo`` metadata of a graph file (raises a one-line VaezooError when absent or broken)."""
    sess = session if session is not None else load_session(path, [CPU_EP], 1)
    props = sess.get_modelmeta().custom_metadata_map
    if META_KEY not in props:
        raise VaezooError(f"{path} is not a vaezoo graph (no '{META_KEY}' metadata); export it with `vaezoo export`")
    try:
        meta = json.loads(props[META_KEY])
    except ValueError:
        raise VaezooError(f"{path}: its '{META_KEY}' metadata is not valid JSON; re-export it with `vaezoo export`") from None
    if not isinstance(meta, dict) or meta.get("format") != META_FORMAT:
        raise VaezooError(f"{path}: unsupported graph metadata format {meta.get('format') if isinstance(meta, dict) else meta!r} "
                          f"(this vaezoo reads {META_FORMAT})")
    return meta


def load_session(path: Path, providers: list, threads: int, provider_options: list | None = None, data: bytes | None = None):
    """An InferenceSession for ``path`` (or for ``data``, the verified bytes of ``path``), created once per
    process and reused."""
    ort = import_onnxruntime()
    path = Path(path)
    if data is not None:
        source, ident = data, ("sha256", hashlib.sha256(data).hexdigest())
    else:
        try:
            st = path.stat()
        except OSError:
            raise VaezooError(f"{path} does not exist") from None
        source, ident = str(path), (str(path.resolve()), st.st_size, st.st_mtime_ns)
    key = (*ident, tuple(providers), json.dumps(provider_options), threads)
    sess = _SESSIONS.get(key)
    if sess is not None:
        return sess
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3  # errors only: ORT's own warnings would clutter stderr
    try:
        sess = ort.InferenceSession(source, sess_options=so, providers=providers, provider_options=provider_options)
    except Exception as exc:  # onnxruntime raises its own exception types (InvalidProtobuf, Fail, ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise VaezooError(f"cannot load {path}: the file is corrupt or truncated, or not an ONNX model this "
                          f"onnxruntime ({ort.__version__}) accepts ({first[:200]}); re-export it with `vaezoo export --force`") from None
    _SESSIONS[key] = sess
    return sess


def _shape_str(shape) -> str:
    return " x ".join(str(d) for d in shape)


class OnnxBackend:
    """Runs parts over numpy arrays: ``run(part, *inputs) -> tuple of float32 arrays``."""

    name = "onnx"

    def __init__(self, folder: Path, device: str = "cpu", precision: str = "fp32"):
        from vaezoo.store.graph_swap import locked_read

        ort = import_onnxruntime()
        self.folder = Path(folder)
        self.precision = precision
        self.threads = physical_cores()
        # The config and the graphs are read together, never across a re-export's swap; sessions are
        # made later from these verified bytes, so a later swap does not mix into this backend.
        self.config, self._graphs = locked_read(self.folder, self._read_verified)
        self.device, self.strict_cuda = self._pick_device(device, ort)
        self._parts: dict[str, tuple] = {}  # part -> (session, meta, input names, input shapes, output names)

    def _read_verified(self) -> tuple[dict, dict[str, bytes]]:
        """(config, {onnx/<part>.onnx: bytes}) with every fp32 graph checked against the manifest."""
        from vaezoo.store.checkpoint import fp32_graph_names, read_config, read_verified

        config = read_config(self.folder)
        self.config = config  # for the messages below
        missing = [p for p in CORE_PARTS if not graph_path(self.folder, p, self.precision).is_file()]
        if missing:
            names = ", ".join(graph_path(self.folder, p, self.precision).name for p in missing)
            what = "no ONNX graphs" if len(missing) == len(CORE_PARTS) else f"missing ONNX graphs {names}"
            flag = "" if self.precision == "fp32" else f" --{self.precision}"
            if self.precision != "fp32" and graph_path(self.folder, "decoder").is_file():
                flag += " --force"
            raise VaezooError(f"{what} in {self.folder / ONNX_DIR}: run `vaezoo export {self._spec()}{flag}` first (or use --backend torch)")
        present = (p.relative_to(self.folder).as_posix() for p in (self.folder / ONNX_DIR).glob("*.onnx*"))
        return config, read_verified(self.folder, fp32_graph_names(present), config)

    # -- device selection
    def _pick_device(self, device: str, ort) -> tuple[str, bool]:
        if device == "cpu":
            return "cpu", False
        if device == "auto":
            if CUDA_EP in ort.get_available_providers():
                return "cuda", False
            note("--device auto: ONNX Runtime has no CUDA provider here; running on CPU")
            return "cpu", False
        if device == "cuda" or device.startswith("cuda:"):
            if device.startswith("cuda:") and not device[5:].isdigit():
                raise UsageError(f"--device must be auto, cpu, cuda or cuda:N, not {device!r}")
            if CUDA_EP not in ort.get_available_providers():
                raise VaezooError(f"--device {device}: this onnxruntime has no CUDA provider (install onnxruntime-gpu "
                                  "instead of onnxruntime), or use --device cpu")
            return device, True
        raise UsageError(f"--device must be auto, cpu, cuda or cuda:N, not {device!r}")

    def _providers(self) -> tuple[list, list]:
        if self.device == "cpu":
            return [CPU_EP], [{}]
        device_id = int(self.device[5:]) if self.device.startswith("cuda:") else 0
        return [CUDA_EP, CPU_EP], [{"device_id": str(device_id)}, {}]

    def _spec(self) -> str:
        """How a user names this model on the command line (its id when it lives in the store)."""
        try:
            from vaezoo.store.resolution import bundled_dir, local_dir

            mid = self.config.get("id", "")
            if mid and self.folder.resolve() in (local_dir(mid).resolve(), bundled_dir(mid).resolve()):
                return mid
        except Exception:  # noqa: BLE001 - only used to word a message
            pass
        return str(self.folder)

    # -- sessions
    def has(self, part: str) -> bool:
        if self.precision == "fp32":
            return f"{ONNX_DIR}/{part}.onnx" in self._graphs
        return graph_path(self.folder, part, self.precision).is_file()

    def _load(self, part: str) -> tuple:
        if part in self._parts:
            return self._parts[part]
        path = graph_path(self.folder, part, self.precision)
        if not self.has(part):
            raise VaezooError(f"{self.config.get('id', self.folder)} has no {path.name} in {path.parent}: "
                              f"run `vaezoo export {self._spec()}` (or use --backend torch)")
        providers, options = self._providers()
        sess = load_session(path, providers, self.threads, options, data=self._graphs.get(f"{ONNX_DIR}/{part}.onnx"))
        if self.device != "cpu":
            used = sess.get_providers()[0]
            if used != CUDA_EP:
                if self.strict_cuda:
                    raise VaezooError(f"--device {self.device}: ONNX Runtime could not use CUDA for {path.name} (it runs on "
                                      f"{used}); check the GPU, CUDA and cuDNN install, or use --device cpu")
                note(f"--device auto: ONNX Runtime could not use CUDA (it runs on {used}); running on CPU")
                self.device = "cpu"
        meta = read_metadata(path, sess)
        check_metadata(meta, self.config, part, path, self.folder)
        # the part's declared signature (written by the exporter from the model's own declaration)
        names = [i["name"] for i in meta.get("inputs", [])]
        shapes = [list(i["shape"]) for i in meta.get("inputs", [])]
        outs = [o["name"] for o in meta.get("outputs", [])]
        if names != [i.name for i in sess.get_inputs()] or outs != [o.name for o in sess.get_outputs()]:
            raise VaezooError(f"{path}: the graph's inputs/outputs do not match the signature in its metadata "
                              f"({', '.join(names)} -> {', '.join(outs)}); re-export with `vaezoo export {self._spec()} --force`")
        self._parts[part] = (sess, meta, names, shapes, outs)
        return self._parts[part]

    def session(self, part: str):
        return self._load(part)[0]

    def metadata(self, part: str) -> dict:
        return self._load(part)[1]

    def providers(self, part: str = "decoder") -> list[str]:
        return self.session(part).get_providers()

    # -- running
    def _feed(self, part: str, names, shapes, inputs) -> dict:
        if len(inputs) != len(names):
            raise UsageError(f"{part}.onnx takes {len(names)} input(s) ({', '.join(names)}), got {len(inputs)}")
        feed = {}
        batch = None
        for name, shape, arr in zip(names, shapes, inputs):
            arr = np.asarray(arr)
            if not (np.issubdtype(arr.dtype, np.floating) or arr.dtype == np.bool_):
                raise UsageError(f"input {name!r} of {part}.onnx must be float32, got {arr.dtype}")
            want = shape[1:]
            if arr.ndim != len(shape) or any(isinstance(w, int) and w != a for w, a in zip(want, arr.shape[1:])):
                raise UsageError(f"input {name!r} of {part}.onnx must have shape N x {_shape_str(want)}, got {_shape_str(arr.shape)}")
            if arr.shape[0] < 1:
                raise UsageError(f"input {name!r} of {part}.onnx is empty")
            if batch is not None and arr.shape[0] != batch:
                raise UsageError(f"inputs of {part}.onnx must have the same batch size, got {batch} and {arr.shape[0]}")
            batch = arr.shape[0]
            feed[name] = np.ascontiguousarray(arr, dtype=np.float32)
        return feed

    def run(self, part: str, *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        sess, _, names, shapes, outs = self._load(part)
        feed = self._feed(part, names, shapes, inputs)
        batch = next(iter(feed.values())).shape[0]
        try:
            if self.device != "cpu" and batch >= IOBIND_MIN_BATCH:
                return self._run_iobinding(sess, feed, outs)
            return tuple(sess.run(outs, feed))
        except Exception as exc:  # an onnxruntime error at run time: one line
            if isinstance(exc, VaezooError):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise VaezooError(f"ONNX Runtime failed running {part}.onnx: {first[:300]}") from None

    def _run_iobinding(self, sess, feed: dict, outs: list) -> tuple[np.ndarray, ...]:
        """Large CUDA batches: inputs copied to the device once, outputs allocated there and copied back once."""
        device_id = int(self.device[5:]) if self.device.startswith("cuda:") else 0
        binding = sess.io_binding()
        for name, arr in feed.items():
            binding.bind_cpu_input(name, arr)
        for name in outs:
            binding.bind_output(name, "cuda", device_id)
        sess.run_with_iobinding(binding)
        return tuple(binding.copy_outputs_to_cpu())


def check_metadata(meta: dict, config: dict, part: str, path: Path, folder: Path | None = None) -> None:
    """Refuse a graph whose metadata does not describe this checkpoint's part (one line, says how to fix)."""
    want = {
        "model_id": config.get("id"),
        "part": part,
        "latent_dim": int(config.get("latent_dim", -1)),
        "data_shape": list(config.get("input", {}).get("shape", [])),
        "decoder_output": config.get("output", {}).get("decoder"),
        "labels": list(config.get("labels", [])),
    }
    got = {
        "model_id": meta.get("model_id"),
        "part": meta.get("part"),
        "latent_dim": meta.get("latent_dim"),
        "data_shape": list(meta.get("data", {}).get("shape", [])),
        "decoder_output": meta.get("decoder_output"),
        "labels": list(meta.get("labels", [])),
    }
    spec = config.get("id", "MODEL")
    for key, value in want.items():
        if got[key] != value:
            raise VaezooError(f"{path} does not belong to this checkpoint: its metadata says {key}={got[key]!r} but "
                              f"config.json says {value!r}; re-export with `vaezoo export {spec} --force`")
    graph_sha = meta.get("weights_sha256")
    if graph_sha and folder is not None:
        expected = _weights_sha256(config, Path(folder))
        if expected and expected != graph_sha:
            raise VaezooError(f"{path} was exported from other weights than {Path(folder) / 'model.safetensors'} "
                              f"(stale graph of a retrained model?); re-export with `vaezoo export {spec} --force`")


def _weights_sha256(config: dict, folder: Path) -> str | None:
    """SHA-256 of model.safetensors: from config.json's manifest when it has one, else None.

    (Without a manifest the weights are not hashed here: a torch-free install may not even have them.)
    """
    files = config.get("files")
    if isinstance(files, dict):
        entry = files.get("model.safetensors")
        if isinstance(entry, dict) and isinstance(entry.get("sha256"), str):
            return entry["sha256"]
    return None
