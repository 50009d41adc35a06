/*
 * retrieval_heads.h -- public API of retrieval_heads, a freestanding single-file C99 reference
 * implementation of "Retrieval Head Mechanistically Explains Long-Context Factuality"
 * (Wu et al., 2024).  The whole implementation is retrieval_heads.c; compile it with
 * -DRH_NO_MAIN to use it as a library behind this header.  MIT licensed (see LICENSE).
 *
 * Library code never exits and never prints to stdout: every function that can fail returns
 * RH_OK (0) or a negative RH_E* code and leaves a one-line message naming the file or argument
 * and the problem, in a caller-supplied buffer (err, errcap) or in the context (rh_ctx_error).
 *
 * ==============================================================================================
 * THE .rhw WEIGHT FORMAT, version 3 (version 1 and 2 files still load)
 * ==============================================================================================
 * One file, little-endian throughout, designed to be mmapped: tensor data is used in place.
 * A file is valid when it meets every rule below; the loader (rh_model_open) refuses any other
 * file with one line naming the file, the field and the problem.  test/rhw_check.py is a second
 * reader written from this comment alone; test/test_rhwspec.c holds the two to the same verdict
 * on thousands of mutated files.  u32/u64 are unsigned, i32 two's complement, f32 IEEE-754
 * binary32; a..b is an inclusive range.  A field marked "ignored" may hold anything (writers
 * write the value given); bytes that lie in no section (below) are ignored the same way.
 *
 * Header: exactly 256 bytes at offset 0; the file is at least that long.
 *
 *   off size type   field                 rule / meaning
 *     0   4  char   magic                 "RHWF"
 *     4   4  u32    version               1, 2 or 3 (2 adds the fields at 200..215 below, 3
 *                                         the mixture of experts at 216..223; a writer writes
 *                                         the lowest version whose fields the model needs, so a
 *                                         file of a model without them is byte-identical to the
 *                                         older version's)
 *     8   4  u32    header_bytes          256
 *    12   4  u32    reserved              0
 *    16   4  u32    dim                   1..65536 (RHW_MAX_DIM): model width (hidden_size)
 *    20   4  u32    hidden_dim            1..2^20 (RHW_MAX_HIDDEN): SwiGLU inner width
 *    24   4  u32    n_layers              1..1024 (RHW_MAX_LAYERS)
 *    28   4  u32    n_heads               1..1024 (RHW_MAX_HEADS): query heads
 *    32   4  u32    n_kv_heads            1..n_heads and n_heads % n_kv_heads == 0
 *    36   4  u32    head_dim              even, 2..1024 (RHW_MAX_HEAD_DIM); n_heads * head_dim
 *                                         need not equal dim (the two limits keep it <= 2^20)
 *    40   4  u32    vocab_size            1..2^24 (RHW_MAX_VOCAB): rows of the embedding and
 *                                         output matrices
 *    44   4  u32    max_ctx               1..2^24 (RHW_MAX_CTX): trained context
 *                                         (max_position_embeddings)
 *    48   4  f32    rope_theta            finite and > 0
 *    52   4  u32    rope_scaling          0 none, 1 linear (positions / factor),
 *                                         2 llama3 (per-frequency rescaling by wavelength),
 *                                         3 longrope (version 2 only; Phi-3: per-frequency
 *                                         factor lists, see rope.short_factor below)
 *    56   4  f32    rope_factor           linear and llama3: finite and > 0; none and
 *                                         longrope: ignored (written 1)
 *    60   4  f32    rope_low_freq_factor  llama3: > 0; else ignored (written 0)
 *    64   4  f32    rope_high_freq_factor llama3: finite and > rope_low_freq_factor; else
 *                                         ignored (written 0)
 *    68   4  u32    rope_original_max_ctx <= 2^31 - 1 whatever the scaling; llama3 and
 *                                         longrope: >= 1 (original_max_position_embeddings);
 *                                         else written 0
 *    72   4  f32    norm_eps              RMSNorm epsilon, 0 < norm_eps < 1
 *    76   4  u32    flags                 bit 0 qkv_bias (q/k/v projections have biases, Qwen2)
 *                                         bit 1 tied_embeddings (output head = embedding matrix)
 *                                         bit 2 add_bos (prepend BOS when encoding a prompt; with
 *                                               bos_id -1 nothing is prepended)
 *                                         bits 3-31 must be 0
 *    80   4  i32    bos_id                -1 (none) or 0..vocab_size - 1
 *    84   4  u32    n_eos                 0..8 (RH_MAX_EOS)
 *    88  32  i32[8] eos_ids               the first n_eos: each 0..vocab_size - 1 (generation_
 *                                         config may list several); the others ignored (written 0)
 *   120   8  u64    meta_offset           metadata section
 *   128   8  u64    meta_size             0: the file has no metadata (meta_offset ignored)
 *   136   8  u64    tok_offset            tokenizer section
 *   144   8  u64    tok_size              >= 1
 *   152   8  u64    dir_offset            tensor directory
 *   160   8  u64    dir_size              >= 1
 *   168   4  u32    n_tensors             >= 1: entries in the directory
 *   172   4  u32    reserved              0
 *   176   8  u64    data_offset           tensor data region; a multiple of 64
 *   184   8  u64    data_size             >= 1
 *   192   8  u64    file_size             equals the file's size in bytes
 *   200   4  u32    sliding_window        version 2: 0 (none) or 1..2^24 (RHW_MAX_CTX): W, the
 *                                         keys a query sees in a windowed layer: position i
 *                                         attends to j with i - W < j <= i (Hugging Face's
 *                                         masking_utils sliding_window_overlay, kv_idx >
 *                                         q_idx - sliding_window, on top of the causal mask;
 *                                         Mistral v0.1 sliding_window, Phi-3, Qwen2 with
 *                                         use_sliding_window); version 1: must be 0
 *   204   4  u32    window_first_layer    version 2: the first windowed layer, layers
 *                                         window_first_layer..n_layers - 1 use the window (Qwen2's
 *                                         max_window_layers; 0 for Mistral and Phi-3, all layers);
 *                                         < n_layers when sliding_window > 0, else must be 0;
 *                                         version 1: must be 0
 *   208   4  u32    rope_dim              version 2: 0 (RoPE rotates all head_dim dimensions)
 *                                         or even, 2..head_dim: RoPE rotates dimensions
 *                                         0..rope_dim-1 of each head, i with i + rope_dim/2, and
 *                                         leaves the rest (HF partial_rotary_factor: rope_dim =
 *                                         int(head_dim * factor)); version 1: must be 0
 *   212   4  f32    rope_attn_factor      longrope: finite and > 0, cos and sin are multiplied
 *                                         by it (HF attention_factor); else ignored (written 0)
 *   216   4  u32    n_experts             version 3: 0 (a dense SwiGLU MLP in every layer) or
 *                                         1..256 (RHW_MAX_EXPERTS): every layer's MLP is a sparse
 *                                         mixture of that many SwiGLU experts of width hidden_dim
 *                                         (Mixtral's num_local_experts); versions 1 and 2: 0
 *   220   4  u32    n_experts_used        version 3: with n_experts, 1..n_experts: the experts
 *                                         each token is routed to (num_experts_per_tok); without,
 *                                         0; versions 1 and 2: 0
 *   224  32         reserved              every byte 0
 * Call R = (rope_dim ? rope_dim : head_dim) / 2, the rotated pairs.  RoPE's inverse frequency i
 * < R is theta^(-2i / 2R), then scaled as rope_scaling says.  longrope (Phi-3, Hugging Face's
 * _compute_longrope_parameters): frequency i is divided by short_factor[i], or by long_factor[i]
 * while the sequence is longer than rope_original_max_ctx: the engine picks the list by the
 * length the sequence has after the rh_eval call (n_past + n > rope_original_max_ctx: long), and
 * when a call changes the list it recomputes the cached positions with it first (HF drops its
 * cache when a generation first crosses original_max_position_embeddings and runs the whole
 * sequence again, which then uses the long factors).
 * Mixture of experts (Mixtral, HF MixtralSparseMoeBlock): with h = rmsnorm(x) the MLP's input,
 * the router's logits r = gate h (n_experts of them), p = softmax(r) over all experts, the
 * n_experts_used largest p chosen (of equal p, the lower expert index), their weights
 * w = p / (the sum of the chosen p), and the MLP's output sum over the chosen experts e, in
 * increasing e, of w_e down_e(silu(gate_e h) * up_e h).
 * bos_id and eos_ids index the vocab_size embedding rows; they may lie past the tokenizer's
 * n_tokens (padding rows).
 *
 * Sections.  The four (offset, size) pairs name byte ranges [offset, offset + size): the
 * metadata and tokenizer sections, the tensor directory and the data region.  Each one with
 * size >= 1 lies inside [256, file_size) (offset >= 256, offset + size <= file_size, computed
 * without overflow), and no two of them share a byte.  They may come in any order and with gaps
 * between them; bytes in no section (gaps, padding, a tail after the last section) are
 * ignored.  The metadata section, the tokenizer section and the directory are each read from
 * their first byte and must end exactly at their last: too few bytes, or any left over, is an
 * error.  The data region holds the tensors; its bytes that no tensor covers are ignored.
 *
 * Metadata section: u32 n_entries, then n_entries times { u32 key_len; key bytes;
 *   u32 value_len; value bytes }.  Keys are 1..64 bytes, each one of a-z 0-9 _ . ; no two
 *   entries have the same key.  Values are 0 or more bytes of any value (UTF-8 by convention,
 *   not checked), not NUL-terminated.  Any key is allowed; known keys: "name", "source",
 *   "architecture", "chat_template", "dtype".
 *
 * Tokenizer section:
 *   u32 kind            1 = SentencePiece-style BPE (metaspace U+2581, optional byte fallback)
 *                       2 = byte-level BPE (GPT-2 byte-to-unicode alphabet)
 *   u32 flags           bit 0 add_dummy_prefix: kind 1, prepend U+2581 to the text (HF Metaspace
 *                             prepend_scheme "first"/"always", SentencePiece add_dummy_prefix);
 *                             kind 2, the ByteLevel pre-tokenizer's add_prefix_space
 *                       bit 1 remove_extra_whitespaces (SentencePiece normalizer: strip leading
 *                             and trailing spaces, collapse runs of spaces)
 *                       bit 2 byte_fallback (unknown characters become <0xNN> byte tokens)
 *                       bit 3 split_digits (SentencePiece: every digit is its own piece)
 *                       bit 4 nfc (Unicode NFC normalization of the input first)
 *                       bit 5 ignore_merges (kind 2: a pre-token that is itself in the
 *                             vocabulary is emitted whole, as Llama-3's tokenizer.json says)
 *                       bit 6 metaspace_split (kind 1: the text is split into words at U+2581
 *                             before BPE, as HF's Metaspace pre-tokenizer with split=true)
 *                       bit 7 hf_pipeline: added tokens are split from the raw text first and
 *                             the prefix (bit 0) is given to every text segment between them
 *                             (HF Prepend normalizer, Metaspace, ByteLevel add_prefix_space);
 *                             without it, SentencePiece's own pipeline
 *                       bit 8 no prefix for a segment that already starts with a space
 *                       bit 9 prefix only for the segment at byte 0 of the text (Metaspace
 *                             prepend_scheme "first")
 *                       bit 10 fuse_unk: consecutive unknown symbols give one unk id
 *                       bits 11-31 must be 0, and:
 *                         kind 2: bits 1, 2, 3 and 6 must be 0, and bit 0 needs bit 7;
 *                         bits 8 and 9 need bit 7; bit 7 excludes bit 1
 *   u32 pretokenizer    kind 2: 1 = GPT-2 regex, 2 = Llama-3 regex, 3 = Qwen2 regex; kind 1: 0
 *   i32 unk_id          -1 (none) or 0..n_tokens - 1
 *   u32 n_tokens        1..vocab_size (the embedding may have padding rows)
 *   u32 n_merges        0 for kind 1 means: merge by piece score (SentencePiece BPE semantics)
 *   u32 pattern_len, then pattern_len bytes: the pre-tokenizer regex as the source gave it
 *                       (informational, any bytes, not checked; the C code implements the
 *                       patterns named above)
 *   n_tokens times:     u32 len (1..65536); len bytes: the piece exactly as in the source
 *                       vocabulary (kind 1 with U+2581 for spaces, "<0x0A>" for byte tokens;
 *                       kind 2 in the byte-to-unicode alphabet, e.g. "Ġthe");
 *                       f32 score; u8 type (1 normal, 2 unknown, 3 control, 4 user_defined,
 *                       5 unused, 6 byte); u8 flags (bit 0 added: matched in raw text before
 *                       pre-tokenization, as HF added tokens and SentencePiece user_defined
 *                       pieces are; bit 1 lstrip; bit 2 rstrip; bit 3 single_word; bit 4
 *                       normalized; bit 5 special: dropped by decode with RH_DETOK_SKIP_SPECIAL)
 *   n_merges times:     u32 left, u32 right, u32 result (token ids; rank = index, 0 merges first)
 *   and nothing after the merges.
 * Rules of the section:
 *   - a piece is well-formed UTF-8 (as Unicode defines it: no overlong form, no surrogate
 *     U+D800..U+DFFF, nothing above U+10FFFF, no cut-off sequence; U+0000 is allowed); no two
 *     tokens have the same piece; the pieces' lengths add up to at most 2^30 - 1 bytes
 *   - a score lies in [-3.0e38, 3.0e38] (f32 0x7F61B1E6; so never NaN or infinite)
 *   - type 1..6; kind 2 has no type 6; a kind 1 type 6 piece is exactly "<0xHH>", HH two
 *     upper-case hex digits 0-9 A-F (so each byte has at most one byte token)
 *   - token flags: bits 6 and 7 must be 0, and bit 3 (single_word) too: it is not supported
 *   - kind 1 with byte_fallback (bit 2): all 256 byte tokens (type 6) <0x00>..<0xFF> are present
 *   - kind 2: for each of the 256 bytes, some token (of any type) has as its piece exactly the
 *     byte's character: bytes 0x21-0x7E, 0xA1-0xAC and 0xAE-0xFF stand for U+0021.. (their own
 *     value), the other 68 bytes, in increasing order, for U+0100..U+0143; UTF-8 encoded
 *   - each merge: left, right and result < n_tokens, piece(result) == piece(left) +
 *     piece(right); no two merges have the same (left, right) (so a valid section has fewer
 *     merges than piece bytes: a reader may refuse more before sizing a table for them)
 *
 * Tensor directory: n_tensors entries one after another, { u32 name_len (1..255); name bytes;
 *   u32 dtype (0 f32, 1 f16, 2 bf16); u32 ndim (1..4); u64 shape[ndim] (each >= 1);
 *   u64 offset; u64 nbytes }, and nothing after them.  Rules:
 *   - the name is one of those listed below, {i} a layer 0..n_layers - 1 in decimal without
 *     leading zeros (so names are printable ASCII); any other name is an error, and so is a
 *     name that appears twice
 *   - every listed tensor is present, except: the three biases are present when qkv_bias is
 *     set and absent when not; lm_head.weight is absent when tied_embeddings is set and present
 *     when not; with n_experts the three mlp.* tensors of a layer are absent and its router
 *     and experts present, without n_experts the reverse
 *   - ndim and shape are exactly as listed (the header's dims give them)
 *   - any dtype for any tensor (norms and biases too: the loader makes f32 copies of the
 *     vectors; the matrices are used in their dtype); one file may mix dtypes
 *   - nbytes == product(shape) * (4 for f32, 2 for f16 and bf16)
 *   - offset is absolute and a multiple of 64; [offset, offset + nbytes) lies inside the data
 *     region; no two tensors share a byte; directory order and data order are free; tensor
 *     values are not checked
 *   Names and shapes are Hugging Face's (row-major, out x in):
 *     model.embed_tokens.weight                       [vocab_size, dim]
 *     model.layers.{i}.input_layernorm.weight         [dim]
 *     model.layers.{i}.self_attn.q_proj.weight        [n_heads * head_dim, dim]
 *     model.layers.{i}.self_attn.k_proj.weight        [n_kv_heads * head_dim, dim]
 *     model.layers.{i}.self_attn.v_proj.weight        [n_kv_heads * head_dim, dim]
 *     model.layers.{i}.self_attn.{q,k,v}_proj.bias    [rows of the weight]   (qkv_bias only)
 *     model.layers.{i}.self_attn.o_proj.weight        [dim, n_heads * head_dim]
 *     model.layers.{i}.post_attention_layernorm.weight [dim]
 *     model.layers.{i}.mlp.gate_proj.weight           [hidden_dim, dim]
 *     model.layers.{i}.mlp.up_proj.weight             [hidden_dim, dim]
 *     model.layers.{i}.mlp.down_proj.weight           [dim, hidden_dim]
 *     model.layers.{i}.block_sparse_moe.gate.weight   [n_experts, dim]   (n_experts only: the
 *                                                                          router)
 *     model.layers.{i}.block_sparse_moe.experts.{e}.w1.weight [hidden_dim, dim]  (expert e,
 *     model.layers.{i}.block_sparse_moe.experts.{e}.w3.weight [hidden_dim, dim]   0..n_experts-1
 *     model.layers.{i}.block_sparse_moe.experts.{e}.w2.weight [dim, hidden_dim]   in decimal
 *                                                     without leading zeros: w1 gate, w3 up,
 *                                                     w2 down, Mixtral's checkpoint names)
 *     model.norm.weight                               [dim]
 *     lm_head.weight                                  [vocab_size, dim]   (absent when tied)
 *     rope.short_factor                               [R]    (longrope only; Phi-3's
 *     rope.long_factor                                [R]     rope_scaling lists)
 *   Phi-3's fused qkv_proj [q + 2 kv rows, dim] and gate_up_proj [2 hidden_dim, dim] are stored
 *   split (weights/export.py cuts them by rows): q, k, v; gate (the first half), up.
 *   q/k weights are in Hugging Face's rotate-half order: RoPE pairs dimension i with
 *   i + head_dim/2 of each head.
 * ==============================================================================================
 */
#ifndef RETRIEVAL_HEADS_H
#define RETRIEVAL_HEADS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RH_VERSION "0.1.0"
#define RH_FORMAT_VERSION 3 /* the newest version; the loader reads 1, 2 and 3 */
#define RH_MAX_EOS 8

/* Error codes (negative returns).  The message is in err / rh_ctx_error(). */
enum {
    RH_OK = 0,
    RH_EINVAL = -1,  /* a bad argument or flag value */
    RH_EIO = -2,     /* a file could not be opened, read, mapped or written */
    RH_EFORMAT = -3, /* a file is malformed: bad magic, truncated, inconsistent */
    RH_ENOMEM = -4,  /* an allocation failed or would exceed a limit */
    RH_ERANGE = -5   /* a position or size exceeds the context or a format limit */
};

typedef enum { RH_F32 = 0, RH_F16 = 1, RH_BF16 = 2 } rh_dtype;
typedef enum { RH_ROPE_NONE = 0, RH_ROPE_LINEAR = 1, RH_ROPE_LLAMA3 = 2, RH_ROPE_LONGROPE = 3 } rh_rope_scaling;

typedef struct {
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, head_dim, vocab_size, max_ctx;
    float rope_theta;
    rh_rope_scaling rope_scaling;
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_original_max_ctx;
    float norm_eps;
    int qkv_bias, tied_embeddings, add_bos;
    int bos_id; /* -1 if none */
    int n_eos;
    int eos_ids[RH_MAX_EOS];
    /* sliding-window attention (format version 2): 0 none, else layers window_first_layer..
     * attend to the window i - sliding_window < j <= i */
    int sliding_window, window_first_layer;
    /* format version 2: RoPE on the first rope_dim dimensions of a head (0: all of them);
     * longrope's attention factor (the two factor lists are tensors, see the format) */
    int rope_dim;
    float rope_attn_factor;
    /* format version 3: a mixture of n_experts SwiGLU experts (hidden_dim wide) in every
     * layer's MLP, n_experts_used of them per token (0, 0: a dense MLP) */
    int n_experts, n_experts_used;
} rh_config;

/* ---- model: the mapped weights and the tokenizer; read-only, shareable by many contexts ---- */

typedef struct rh_model rh_model;

/* Map and validate a .rhw file. */
int rh_model_open(const char *path, rh_model **out, char *err, size_t errcap);
/* Validate a .rhw image in memory (fuzzing, tests).  The bytes are copied; `name` is used in
 * messages in place of a path. */
int rh_model_open_memory(const void *data, size_t size, const char *name, rh_model **out,
                         char *err, size_t errcap);
void rh_model_close(rh_model *m);
const rh_config *rh_model_config(const rh_model *m);
const char *rh_model_path(const rh_model *m);
/* The dtype of the projection matrices (the file's dominant weight dtype). */
rh_dtype rh_model_dtype(const rh_model *m);
/* Metadata value for key (not NUL-terminated; *len set), or NULL when absent. */
const char *rh_model_meta(const rh_model *m, const char *key, size_t *len);
/* 64-bit FNV-1a of the whole file as 16 lower-case hex digits + NUL (for run records). */
void rh_model_checksum(const rh_model *m, char out[17]);

/* A model of the given shape with seeded random weights (norms near 1, matrices uniform with
 * scale 1/sqrt(fan_in); projections in dtype, vectors f32) and a SentencePiece-kind tokenizer of
 * the 256 byte tokens <0x00>..<0xFF> (ids 0..255); needs no file (benchmarks, tests).  The same
 * seed gives the same bytes on every host.  cfg->vocab_size >= 256. */
int rh_model_random(const rh_config *cfg, rh_dtype dtype, uint64_t seed, rh_model **out,
                    char *err, size_t errcap);

/* Write a .rhw file (to path.tmp, then renamed).  meta: key, value, key, value, ..., NULL (or
 * NULL).  tok/tok_size: a tokenizer section as specified above.  The tensors are checked
 * against cfg as the loader would check them.  Tensor data is in host byte order (written
 * little-endian on any host).  Used by tests to build models by hand. */
typedef struct {
    const char *name;
    rh_dtype dtype;
    int ndim;
    int64_t shape[4];
    const void *data;
} rh_tensor_in;
int rh_rhw_write(const char *path, const rh_config *cfg, const char *const *meta,
                 const void *tok, size_t tok_size, const rh_tensor_in *tensors, int n_tensors,
                 char *err, size_t errcap);

/* ---- tokenizer ---- */

/* Encode text (len bytes, any bytes) to token ids.  add_bos: 1 prepend BOS, 0 do not, -1 as the
 * model's add_bos flag says.  *ids is malloc'd (free it); *n_ids its length. */
int rh_tokenize(const rh_model *m, const char *text, size_t len, int add_bos, int **ids,
                int *n_ids, char *err, size_t errcap);

enum {
    RH_DETOK_STRIP_LEADING = 1, /* drop the dummy-prefix space of the first token (HF decode) */
    RH_DETOK_SKIP_SPECIAL = 2   /* drop control/special tokens (BOS, EOS, chat markers) */
};
/* Decode ids to the exact bytes they stand for.  *text is malloc'd, NUL-terminated (free it). */
int rh_detokenize(const rh_model *m, const int *ids, int n_ids, int flags, char **text,
                  size_t *len, char *err, size_t errcap);
/* The bytes token id decodes to on its own (metaspace -> ' ', <0xNN> -> the byte, byte-level
 * alphabet -> bytes); returns the byte count (may exceed cap: then only cap bytes written), or
 * a negative code for an id out of range. */
int rh_token_bytes(const rh_model *m, int id, char *buf, size_t cap);
/* The piece of token id as the vocabulary holds it ("▁the", "<0x0A>", "Ġthe"); returns its
 * byte count as rh_token_bytes does. */
int rh_token_piece(const rh_model *m, int id, char *buf, size_t cap);
int rh_n_tokens(const rh_model *m);

/* Streaming decode: bytes of a multi-byte UTF-8 character split across tokens are held back
 * until the character is complete (or proven invalid, then emitted as they are). */
typedef struct {
    const rh_model *m;
    int flags;   /* RH_DETOK_* */
    int n_seen;  /* tokens pushed so far */
    int n_pend;
    unsigned char pend[8];
} rh_decoder;
void rh_decoder_init(rh_decoder *d, const rh_model *m, int flags);
/* Push one token; writes the bytes now complete to out (at most cap) and returns their count,
 * or a negative code. cap >= 64 + the longest piece is always enough. */
int rh_decoder_push(rh_decoder *d, int id, char *out, size_t cap);
/* Emit whatever is held back (an incomplete character at the end). */
int rh_decoder_flush(rh_decoder *d, char *out, size_t cap);

/* ---- context: KV cache, scratch, thread pool and hooks for one sequence ---- */

typedef struct rh_ctx rh_ctx;

typedef struct {
    int n_threads;     /* worker threads; 0 = the number of online CPUs */
    int n_ctx;         /* KV cache capacity in tokens; 0 = the model's max_ctx */
    rh_dtype kv_dtype; /* RH_F32 (default), RH_F16 or RH_BF16 */
    int prefill_chunk; /* tokens per prefill chunk; 0 = default */
    int reference;     /* 1: the plain reference forward pass (retrieval_heads.c section 2,
                          reference_forward) instead of the fast one: one token at a time on the
                          calling thread, plain loops, sums in double, for reading and checking;
                          slow.  The same KV cache (layout, dtype, rounding), hooks and rewind;
                          n_threads and prefill_chunk do not apply.  Its logits agree with the
                          fast path's to float rounding (within 1e-5 on the test fixtures, f32
                          KV cache). */
    /* KV cache policy (README, "A KV cache for the retrieval heads").  kv_window 0 (default):
     * every KV head keeps every position.  kv_window W > 0: a KV head is kept full (every
     * position) when kv_keep flags any of its query heads (kv_keep: n_layers * n_heads flags,
     * index layer * n_heads + head, read when the context is made; NULL: none), and every other
     * KV head is windowed: it stores only positions 0 .. kv_sinks-1 (attention sinks) and the
     * last W positions, in kv_sinks + W slots (memory really not allocated; rh_ctx_sizes_of
     * counts it), and its query heads attend to those alone, at their true positions (in a
     * sliding-window layer, inside the layer's window only).  Where sinks + window cover a
     * sequence the logits are the full cache's, bit for bit. */
    int kv_window;     /* W >= 1, or 0: no policy */
    int kv_sinks;      /* S >= 0 (with kv_window > 0) */
    const unsigned char *kv_keep;
} rh_ctx_params;

void rh_ctx_params_default(rh_ctx_params *p);
/* Before allocating, counts the KV cache + scratch for n_ctx plus the (mmapped) weights and
 * returns RH_ENOMEM, with what is needed and what is available in err, when that exceeds the
 * physical memory (or a finite RLIMIT_AS); n_ctx over the format limit of 2^24 tokens, or a
 * cache whose size overflows size_t, is RH_ERANGE; other bad parameters RH_EINVAL. */
int rh_ctx_new(const rh_model *m, const rh_ctx_params *p, rh_ctx **out, char *err,
               size_t errcap);
void rh_ctx_free(rh_ctx *c);
/* What a context of these parameters holds, counted as rh_ctx_new's memory check counts it
 * (before allocating anything): the KV cache, the scratch (activations, packing and attention
 * tiles of every thread), the model's weights (mapped), and the memory available (physical
 * memory, lowered to a finite RLIMIT_AS; 0 when unknown); with the capacity, prefill chunk and
 * threads the context would have (defaults resolved).  A planner's view: nothing is allocated. */
typedef struct {
    int n_ctx, chunk, n_threads;
    double kv_bytes, scratch_bytes, weight_bytes, available_bytes;
    double kv_full_bytes;      /* the KV cache without the policy (every head full) */
    int kv_heads, kv_heads_full; /* n_layers * n_kv_heads, and of them those kept full */
} rh_ctx_sizes;
int rh_ctx_sizes_of(const rh_model *m, const rh_ctx_params *p, rh_ctx_sizes *out, char *err,
                    size_t errcap);
const char *rh_ctx_error(const rh_ctx *c);
const rh_model *rh_ctx_model(const rh_ctx *c);
int rh_ctx_n_past(const rh_ctx *c); /* tokens in the KV cache */
int rh_ctx_n_ctx(const rh_ctx *c);  /* capacity */
/* Forget cache positions >= n_past (0 empties it), e.g. to reuse a shared prompt prefix.
 * Under a KV policy with windowed heads a rewind may need positions a window has dropped:
 * n_past below rh_ctx_rewind_floor (other than 0) is refused with RH_ERANGE. */
int rh_ctx_rewind(rh_ctx *c, int n_past);
/* The lowest n_past > 0 that rh_ctx_rewind accepts now (0 accepts any): 0 while every window
 * still holds all it was given (no policy, or no more than kv_sinks + kv_window positions
 * evaluated since the cache was last emptied), else the highest position evaluated so far. */
int rh_ctx_rewind_floor(const rh_ctx *c);
/* That rule without a context, for planning (a dry run; which prefix a grid's test can keep):
 * the floor of a cache with windowed KV heads (kv_sinks, kv_window) after positions up to
 * hi - 1 were evaluated since it was last emptied: 0 when hi <= kv_sinks + kv_window, else
 * hi - 1. */
int rh_kv_rewind_floor(int hi, int kv_sinks, int kv_window);
/* KV cache bytes (K and V) the context holds, and its KV heads kept full (of n_layers *
 * n_kv_heads; all of them without a policy). */
double rh_ctx_kv_bytes(const rh_ctx *c);
int rh_ctx_kv_full_heads(const rh_ctx *c);

/* Run the model on n tokens at positions n_past .. n_past+n-1 (prefill in chunks when n > 1),
 * appending them to the KV cache.  logits: NULL; or vocab_size floats for the last token; or,
 * with logits_all, n * vocab_size floats (row i for token i).  Bit-identical for any thread
 * count and any prefill_chunk.  A prefill (n > 1) runs packed GEMM kernels and a decode step
 * (n == 1) dot-product kernels: the two agree to float rounding (about 1e-6 relative), not bit
 * for bit, so a token gets the same bits from the same kind of call. */
int rh_eval(rh_ctx *c, const int *ids, int n, float *logits, int logits_all);

/* Observe hook.  While set, every rh_eval records, for the LAST token it processes (a decode
 * step when n == 1), for every (layer, head) at index layer * n_heads + head:
 *   top1[i]        the position (0 .. n_past-1 after the call, i.e. over the whole visible row,
 *                  the token itself included) of the largest attention weight; ties -> the
 *                  smallest position
 *   top1_weight[i] that weight after softmax (optional, may be NULL)
 *   rows           optional: the whole post-softmax row of each head, row_stride floats apart
 *                  (row_stride >= n_past after the call, else RH_ERANGE).
 * Masked heads report the attention they actually apply: RH_MASK_UNIFORM position 0 (all weights
 * tie) with weight 1/n_past, RH_MASK_NEG_INF the token itself with weight 1, RH_MASK_ZERO the
 * head's unmasked attention (only its output is zeroed).  Top-1 comes from the same scores the
 * softmax uses, in the same pass (the KV cache is not read twice).
 * Pass NULL to rh_set_observe to stop observing.  The buffers are the caller's and must stay
 * valid while set. */
typedef struct {
    int32_t *top1;
    float *top1_weight;
    float *rows;
    int row_stride;
} rh_observe;
int rh_set_observe(rh_ctx *c, const rh_observe *obs);

/* Mask hook.  heads: n_layers * n_heads flags (index layer * n_heads + head), nonzero = masked;
 * NULL clears.  The flags are copied.  Applies to every rh_eval until changed, so a caller
 * that masks only decode steps (as the original code does) sets it after the prefill. */
typedef enum {
    RH_MASK_UNIFORM = 0, /* pre-softmax scores set to 0: uniform attention over the visible
                            positions, the head outputs the mean of the values (the paper's) */
    RH_MASK_NEG_INF = 1, /* every position but the token itself set to -inf: the head attends
                            only to its own token and moves nothing from the context */
    RH_MASK_ZERO = 2     /* the head's output is zeroed before o_proj */
} rh_mask_mode;
int rh_set_mask(rh_ctx *c, const unsigned char *heads, rh_mask_mode mode);

/* The kernels this build has ("avx512+bf16", "avx2+fma+f16c", "neon", "scalar"), and what made
 * the build: version, kernels, compiler and the source (the Makefile passes a hash of the
 * sources as RH_SOURCE_HASH; built otherwise, the build's date and time stand for it).  Results
 * are recorded with it, and a run resumes only a run of the same build. */
const char *rh_kernels(void);
const char *rh_build(void);

/* Index of the largest of n floats (ties -> the smallest index). */
int rh_argmax(const float *x, int n);

/* ---- the method's pieces, usable on their own ---- */

/* NLTK's PorterStemmer (default NLTK_EXTENSIONS mode) on len bytes of a lower-case ASCII word;
 * writes the stem + NUL to out (room for len + 2 bytes) and returns its length. */
size_t rh_porter_stem(const char *word, size_t len, char *out);

/* ROUGE-1 recall of prediction against reference, exactly as Google's rouge_score computes it
 * with use_stemmer=True (in [0, 1]; 0 for an empty reference; -1 when out of memory). */
double rh_rouge1_recall(const char *reference, size_t rlen, const char *prediction,
                        size_t plen);

/* One decode step of the retrieval score.  top1: the attended position of each head (index
 * layer * n_heads + head, n_heads_total of them) at the step that generated `generated`;
 * seq: the visible sequence; [span_start, span_end): the answer span.  Every head whose top-1
 * lies in the span on a token equal to `generated` gets score[i] += 1/|span|.  set_mode: each
 * span position counts once per head (hit: n_heads_total * |span| flags, zeroed per test).
 * Returns the number of heads that scored. */
int rh_retrieval_step(const int32_t *top1, int n_heads_total, const int *seq, int n_seq,
                      int span_start, int span_end, int generated, int set_mode,
                      unsigned char *hit, double *score);

/* First i in [from, to - n_ans] where ids[i .. i+n_ans) matches the answer: its token set
 * overlaps the answer's by more than 90 % (the original's rule), or with exact, equal ids.
 * Returns i or -1. */
int rh_find_span(const int *ids, int n_ids, int from, int to, const int *ans, int n_ans,
                 int exact);

/* Retrieval scores per head in the published form {"layer-head": [score per test, ...]}. */
typedef struct {
    int n_layers, n_heads;  /* keys cover layer < n_layers, head < n_heads */
    int *n_tests;           /* per head (layer * n_heads + head): scores held */
    double **scores;        /* per head: n_tests[i] scores */
    unsigned char *present; /* per head: the key exists */
} rh_scores;
int rh_scores_init(rh_scores *s, int n_layers, int n_heads);
int rh_scores_push(rh_scores *s, int head_index, double score);
/* Read a score file (one JSON object, as published; or QRHead's list form); every byte is checked. */
int rh_scores_read(const char *path, rh_scores *out, char *err, size_t errcap);
int rh_scores_parse(const char *text, size_t len, const char *name, rh_scores *out, char *err,
                    size_t errcap);
/* Write the published one-line form (as Python's json.dump), atomically (temp + rename). */
int rh_scores_write(const char *path, const rh_scores *s, char *err, size_t errcap);
/* QRHead's form [["layer-head", mean score], ...], highest first, as its json.dump(indent=4)
 * writes it (rh_scores_read reads that form too). */
int rh_scores_write_qrhead(const char *path, const rh_scores *s, char *err, size_t errcap);
double rh_scores_mean(const rh_scores *s, int head_index);
void rh_scores_free(rh_scores *s);

/* ---- names of the enumerations: one table each, in value order, NULL-terminated.  The command
 * line parses with them and every output records them. ---- */
extern const char *const rh_dtype_names[];     /* "f32", "f16", "bf16" */
extern const char *const rh_mask_mode_names[]; /* "uniform", "neg-inf", "zero" */
/* The index of s in names, or -1. */
int rh_enum_parse(const char *const *names, const char *s);

/* ---- choosing heads: for masks (and anything else that acts on a set of heads) ---- */
typedef enum {
    RH_PICK_NONE = 0,   /* no heads */
    RH_PICK_HEADS = 1,  /* the heads listed in `heads`: "LAYER-HEAD,LAYER-HEAD,..." */
    RH_PICK_TOP = 2,    /* the k best heads of the score file `scores` (highest mean first) */
    RH_PICK_RANDOM = 3  /* k heads drawn (seeded) among those with mean score < 0.1 in `scores`:
                           never a retrieval head */
} rh_pick_kind;
typedef struct {
    rh_pick_kind kind;
    const char *heads;  /* RH_PICK_HEADS */
    int k;              /* RH_PICK_TOP, RH_PICK_RANDOM */
    const char *scores; /* RH_PICK_TOP, RH_PICK_RANDOM: a score file of the model's shape */
    uint64_t seed;      /* RH_PICK_RANDOM */
} rh_head_pick;
/* flags: n_layers * n_heads bytes, set to 1 for the chosen heads (index layer * n_heads + head);
 * it may be NULL when pick is NULL or RH_PICK_NONE.
 * *label (malloc'd, may be NULL) gets "none", "top-3: 2-0 3-0 3-1", "random-3: ...",
 * "heads-2: ...".  Messages name the options as the command line does, `flag` the prefix of
 * their names ("--mask" gives --mask-top, --mask-random, --mask-heads; the score file is
 * --scores). */
int rh_head_pick_resolve(const rh_head_pick *pick, const char *flag, int n_layers, int n_heads,
                         unsigned char *flags, char **label, char *err, size_t errcap);

/* ---- what a run costs, before it starts: tokens, FLOPs, bytes and seconds ----
 * A model of this machine's speed, measured in a second or two (rh_cost_measure), and the cost
 * of one item under it (rh_cost_add): a prefill of the prompt positions [start, end) -- those
 * before `start` held in the KV cache from an earlier item -- then n_decode decode steps at the
 * positions end, end + 1, ...  Prefill time = calls x prefill_chunk_s + FLOPs x prefill_flop_s,
 * a call being up to one prefill chunk of tokens and the FLOPs those of the weight matmuls
 * (2 x matrix parameters per token, the output head left out) and of attention (QK^T and PV,
 * 4 x head_dim x n_heads x n_layers per visible position); decode time = bytes read x
 * decode_byte_s, the bytes being the weights (with the output head) and the KV cache up to the
 * step's position.  detect and niah cost every test with it (--dry-run, and the progress line's
 * ETA); anything that runs items of prompts (an evaluation) can cost each the same way. */
typedef struct {
    double prefill_chunk_s; /* seconds per prefill call (per chunk): packing the weights, ... */
    double prefill_flop_s;  /* seconds per FLOP of prefill */
    double decode_byte_s;   /* seconds per byte a decode step reads */
    int chunk;              /* the context's prefill chunk (tokens), as measured */
    rh_dtype kv_dtype;      /* the KV cache's dtype, as measured */
    int n_threads;          /* the threads it was measured with */
    int prefill_tokens;     /* the measurement's longest prefill, in tokens */
    double measure_s;       /* the wall time the measurement took */
} rh_cost_rates;

typedef struct {
    double prefill_tokens, prefill_calls, prefill_flops;
    double decode_tokens, decode_bytes;
    double seconds; /* under the rates */
} rh_cost;

/* Time a few short prefills and decode steps of m with the context parameters p (threads, KV
 * dtype, chunk; n_ctx is ignored), spending about budget_s seconds (at least one of each);
 * budget_s 0 measures nothing and leaves the three rates 0 (costs in tokens, FLOPs and bytes
 * only).  Results vary with the machine's load, as every timing does; nothing else depends on
 * them. */
int rh_cost_measure(const rh_model *m, const rh_ctx_params *p, double budget_s, rh_cost_rates *out,
                    char *err, size_t errcap);
/* Add the cost of one item (0 <= start <= end, n_decode >= 0) to *acc. */
void rh_cost_add(const rh_model *m, const rh_cost_rates *r, int start, int end, int n_decode,
                 rh_cost *acc);

/* ---- labels of a response: what an answer that is not the expected one is (the paper's
 * hallucination finding).  Words are ROUGE-1's tokens (lower-cased runs of [a-z0-9], Porter-stemmed);
 * the rules, in this order:
 *   retrieved     ROUGE-1 recall of the (best) answer > 50 % (a test niah and detect keep)
 *   partial       recall in (0, 50 %]
 *   degenerate    no words, or the words end in a loop: a cycle of 1-4 words repeated at least 3
 *                 times, at least half of the words
 *   haystack      3 consecutive words (all of them when fewer) copied from the context outside the
 *                 needle: the content came from elsewhere in the context
 *   hallucinated  anything else: a fluent answer with none of the answer's words, neither a loop
 *                 nor copied from the context ---- */
typedef enum {
    RH_LABEL_RETRIEVED = 0,
    RH_LABEL_PARTIAL = 1,
    RH_LABEL_DEGENERATE = 2,
    RH_LABEL_HAYSTACK = 3,
    RH_LABEL_HALLUCINATED = 4,
    RH_N_LABELS = 5
} rh_label;
extern const char *const rh_label_names[]; /* "retrieved", "partial", "degenerate", "haystack",
                                              "hallucinated" */
/* The label of response (rlen bytes).  answers: n_answers acceptable answers (the best recall
 * counts); context: the text the model saw; needle (NULL: none): a part of the context whose
 * words do not count as "elsewhere" (niah's needle).  Returns an rh_label, or RH_ENOMEM. */
int rh_response_label(const char *response, size_t rlen, const char *const *answers,
                      int n_answers, const char *context, size_t clen, const char *needle,
                      size_t nlen);

/* ---- the experiments of the paper, from C: detect (retrieval scores) and niah (the
 * needle-in-a-haystack grid, with heads masked) ---- */

typedef enum { RH_DETECT = 0, RH_NIAH = 1 } rh_experiment_kind;
typedef enum { RH_SPAN_OVERLAP = 0, RH_SPAN_EXACT = 1 } rh_span_rule;
typedef enum { RH_SPAN_IN_NEEDLE = 0, RH_SPAN_IN_PROMPT = 1 } rh_span_search;
typedef enum { RH_DEPTHS_LINEAR = 0, RH_DEPTHS_SIGMOID = 1 } rh_depth_spacing;
extern const char *const rh_span_rule_names[];     /* "overlap", "exact" */
extern const char *const rh_span_search_names[];   /* "needle", "prompt" */
extern const char *const rh_depth_spacing_names[]; /* "linear", "sigmoid" */

/* What the progress callback is told after each test. */
typedef struct {
    int done, total;   /* tests of this shard finished (earlier runs' included), and in all */
    int resumed;       /* of them, finished by earlier runs */
    double elapsed_s, eta_s;
    int length, needle;
    double depth;      /* the test just run */
    double score;      /* its ROUGE-1 recall x 100 */
    const char *response;
} rh_progress;

typedef struct {
    rh_experiment_kind kind;
    const char *model;      /* .rhw file */
    const char *haystack;   /* a text file, or a folder of *.txt read in name order */
    const char *needles;    /* JSON lines with needle, question, answer */
    int n_needles;          /* the first n needles only; 0: all (or needle_first/needle_end) */
    int needle_first, needle_end; /* needles [first, end) only; end 0: all */
    const int *lengths;     /* context lengths in tokens; NULL: 4 from max_ctx / 4 to max_ctx */
    int n_lengths;
    const double *depths;   /* needle depths in percent; NULL: 0, 25, 50, 75, 100 */
    int n_depths;
    rh_depth_spacing depth_spacing; /* how the depths were spaced (recorded with them) */
    int buffer;             /* tokens left for the question and the answer (200) */
    const char *template_text; /* "{context}...{question}..."; NULL: the original's */
    int chat;               /* 1: the model's chat template instead */
    rh_span_rule span;
    rh_span_search span_search;
    int max_new;            /* tokens decoded at most (50) */
    int score_set;          /* detect: each span position counts once per head */
    int append;             /* detect: add to the lists of an existing score file */
    rh_head_pick mask;      /* niah: the heads to mask */
    rh_mask_mode mask_mode;
    int mask_prefill;       /* 1: mask the prefill too (default: decode steps only) */
    rh_ctx_params ctx;      /* threads, KV cache dtype, capacity (0: as each test needs), the KV
                               policy's window and sinks (kv_keep is set from kv_keep below) */
    rh_head_pick kv_keep;   /* with ctx.kv_window > 0: the heads whose KV heads keep every
                               position (RH_PICK_NONE: every KV head windowed) */
    int shard_i, shard_n;   /* run the tests t with t % shard_n == shard_i (0 <= shard_i < shard_n; the
                               files and the command line count shards from 1: shard_i + 1) */
    int fresh;              /* 1: ignore finished tests of earlier runs (default: resume) */
    int no_prefix_reuse;    /* 1: prefill every prompt whole (default: keep the prefix a test
                               shares with what the KV cache holds from the test before) */
    int dry_run;            /* 1: set up, plan and cost every test, measure this machine
                               (res->cost); run no test, write no output */
    int order;              /* the order the tests run in, for tests (outputs do not depend on
                               it): 0 the shared-prefix order (default), 1 grid order, 2 grid
                               order reversed, 3 shuffled (seeded) */
    const rh_model *model_handle; /* an open model to run instead of opening `model` (which then
                               only names it in the outputs); the caller keeps it */
    int compat_original;    /* 1: the original code's prompt and decoding (README, "--compat original"):
                               BOS before the needle where the tokenizer adds one, the needle after a
                               period token, the answer span searched over the whole prompt with the
                               answer tokenized alone, decoding stopped by "<0x0A>" or id 144 only
                               (never EOS), 20 lengths and depths 0:100:10 by default */
    const char *out;        /* detect: the score file (BASE.json); niah: BASE */
    int argc;               /* the command line recorded in the outputs (may be 0) */
    char **argv;
    void (*progress)(void *user, const rh_progress *p); /* after each test, or NULL */
    void (*note)(void *user, const char *line);         /* warnings and notices, or NULL */
    void *user;
} rh_experiment;

/* What a run costs (rh_cost) in its planned order, and where its memory goes.  Tests that
 * earlier runs finished are not counted.  Decode is counted at the expected length of an answer
 * (the needle's tokens and a newline, at most max_new) and at its bound (max_new per test). */
typedef struct {
    int n_tests;              /* tests to run */
    int longest_prompt;       /* tokens */
    rh_cost reuse;            /* with prefix reuse, the expected decode */
    rh_cost whole;            /* every prompt prefilled whole, the expected decode */
    double decode_tokens_max; /* every test decoding max_new tokens */
    double seconds_max;       /* the time with prefix reuse, every test decoding max_new */
    double build_s;           /* building the prompts, as the plan took (the run builds each
                                 again; included in the three times above) */
    rh_ctx_sizes ctx;         /* the one context the run allocates */
    double plan_bytes;        /* the planned prompts' ids, held while the run plans */
    double peak_bytes;        /* KV cache + scratch + weights + plan */
    rh_cost_rates rates;      /* this machine's, measured (dry_run, or a progress callback) */
} rh_experiment_cost;

/* What a run measured; rh_experiment_result_free releases it. */
typedef struct {
    rh_experiment_cost cost; /* the plan's cost (every run); the rates only when measured */
    rh_cost done;            /* what this run did: prompt tokens prefilled (those kept in the
                                cache not counted), decode steps, FLOPs, bytes; seconds: the
                                wall time of its tests */
    double prefill_s, decode_s; /* of that wall time, in prefill and in decode */
    int n_tests;            /* tests of this shard */
    int n_resumed, n_run;   /* finished by earlier runs, run now */
    int running;            /* 1 when a failure came after the first test started */
    /* detect */
    int n_kept, n_not_kept, n_no_span, appended;
    rh_scores scores;       /* the score file as written */
    /* niah */
    int n_lengths, n_depths;
    int *lengths;
    double *depths;
    double *cell_mean;      /* (depth, length): mean score x 100 over the needles, NAN if none */
    int *cell_n;
    double mean;            /* over every test of the shard */
    int n_scored;
    char *mask_label;       /* "none", "top-3: 2-0 3-0 3-1", ... */
    char *kv_label;         /* the KV policy: "full", or "sinks 4, window 64, full: top-3: 2-0 ..." */
    char *paths[5];         /* the files written, in the order the command line prints them */
    int n_labels[RH_N_LABELS]; /* niah: the responses of each rh_label */
} rh_experiment_result;

/* Defaults as the command line has them: needles weights/needles.jsonl, haystack
 * weights/haystack/, buffer 200, max_new 50, one shard, output "retrieval_scores.json" or
 * "niah". */
void rh_experiment_default(rh_experiment *x, rh_experiment_kind kind);
/* Run it: every test of the grid (this shard's, resuming finished ones), then the outputs.
 * Returns RH_OK or a negative code with the message in err; res (may be NULL) gets the figures. */
int rh_experiment_run(const rh_experiment *x, rh_experiment_result *res, char *err,
                      size_t errcap);
void rh_experiment_result_free(rh_experiment_result *r);

/* ---- eval: any task under any mask -- generation (chain of thought, QA), multiple choice,
 * perplexity -- as lm-evaluation-harness scores them (README.md, "Tasks under masks") ----
 * A task file holds JSON lines, one item each, with an "id" and a "kind":
 *   generate    "prompt", "answer" (a string or a list of acceptable strings), "metric": exact
 *               (SQuAD-normalised), number (GSM8K: strict-match, else flexible-extract), rouge1
 *               (recall > 50 % is correct), f1 (SQuAD token F1; exact match is correct); greedy
 *               decoding to a stop string, EOS or max_new tokens
 *   choice      "prompt", "choices" (at least 2), "gold" (0-based): each choice scored by the summed
 *               log-probability of " " + choice after the prompt (acc), also divided by its length
 *               in characters (acc_norm) and in bytes (acc_bytes)
 *   perplexity  "text": token NLL over sliding windows (every token scored once, with at least
 *               window - stride tokens of context)
 * Masks (the heads of an rh_head_pick) apply, as niah's, to the positions whose predictions are
 * generated or scored: the context before them is run unmasked unless mask_prefill. */
typedef enum { RH_TASK_GENERATE = 0, RH_TASK_CHOICE = 1, RH_TASK_PERPLEXITY = 2 } rh_task_kind;
typedef enum { RH_METRIC_EXACT = 0, RH_METRIC_NUMBER = 1, RH_METRIC_ROUGE1 = 2, RH_METRIC_F1 = 3 } rh_metric;
typedef enum { RH_FORMAT_ITEMS = 0, RH_FORMAT_GSM8K = 1 } rh_task_format;
extern const char *const rh_task_kind_names[];   /* "generate", "choice", "perplexity" */
extern const char *const rh_metric_names[];      /* "exact", "number", "rouge1", "f1" */
extern const char *const rh_task_format_names[]; /* "items", "gsm8k" */

/* What the progress callback is told after each item. */
typedef struct {
    int done, total, resumed; /* items of this shard finished (earlier runs' included), in all, by earlier runs */
    double elapsed_s, eta_s;
    const char *id;           /* the item just run */
    rh_task_kind kind;
    double score;             /* its score x 100 (perplexity: NLL per token) */
    const char *response;     /* generate: the response; otherwise "" */
} rh_eval_progress;

typedef struct {
    const char *model;       /* .rhw file (not read with rescore) */
    const char *task;        /* a task file (or NULL) */
    const char *perplexity;  /* a text file, or a folder of *.txt read in name order: one
                                perplexity item per file, its name the id (or NULL) */
    const char *rescore;     /* an eval's BASE.jsonl: recompute its metrics, no model run */
    rh_task_format format;   /* of task and fewshot: items, or GSM8K's own JSON lines
                                (question, answer): prompt "Question: {question}\nAnswer:", stops
                                "\n\nQuestion:" and "\n\n", metric number */
    const char *fewshot;     /* a task file to draw shots from (or NULL) */
    int shots;               /* K shots, drawn once per run (seeded by seed), prepended to every
                                generate and choice item: "{prompt} {answer}" joined by "\n\n" */
    uint64_t seed;           /* the shots' draw (mask.seed draws RH_PICK_RANDOM's heads) */
    int max_new;             /* generate: tokens decoded at most (256) */
    const char *const *stop; /* generate: stop strings (not part of the response) */
    int n_stop;
    int window, stride;      /* perplexity: tokens per window (0: the model's max_ctx) and new
                                tokens per window (0: window / 2); 1 <= stride < window */
    rh_head_pick mask;
    rh_mask_mode mask_mode;
    int mask_prefill;        /* 1: mask the context too */
    rh_ctx_params ctx;       /* threads, KV cache dtype, capacity (0: what the items need), the KV
                                policy's window and sinks (kv_keep is set from kv_keep below) */
    rh_head_pick kv_keep;    /* with ctx.kv_window > 0: the heads whose KV heads keep every position */
    int shard_i, shard_n;    /* run the items t with t % shard_n == shard_i (0 <= shard_i < shard_n; the
                                files and the command line count shards from 1: shard_i + 1) */
    int fresh;               /* 1: ignore finished items of earlier runs (default: resume) */
    int dry_run;             /* 1: set up, tokenize and cost every item to run (rh_eval_result's
                                cost), measure this machine, then stop: nothing is run or written */
    const char *out;         /* BASE: BASE.jsonl, BASE.csv, BASE.run.json ("eval") */
    int argc;                /* the command line recorded in the outputs (may be 0) */
    char **argv;
    void (*progress)(void *user, const rh_eval_progress *p); /* after each item, or NULL */
    void (*note)(void *user, const char *line);              /* warnings and notices, or NULL */
    void *user;
} rh_eval_task;

/* What an evaluation costs (rh_cost, under the rates measured for a dry run), counted by running
 * the items' own control flow without the model: the context a cache already holds from the item
 * before is kept (a few-shot run prefills its shots once; the continuations of a choice share
 * their context), every generate item decodes max_new tokens (a bound: a stop string or EOS ends
 * one sooner), and the prefill FLOPs include the output head of every row that is scored. */
typedef struct {
    int n_items;              /* items to run (not finished before) */
    int n_generate, n_choice, n_perplexity;
    int longest;              /* tokens: the largest context an item needs */
    rh_cost reuse;            /* as the run goes */
    rh_cost whole;            /* every prefill from position 0 */
    rh_ctx_sizes ctx;         /* the one context the run allocates */
    double peak_bytes;        /* KV cache + scratch + weights */
    rh_cost_rates rates;      /* this machine's, measured */
} rh_eval_cost;

/* What a run measured (over the items of this shard); rh_eval_result_free releases it. */
typedef struct {
    rh_eval_cost cost;      /* dry_run only */
    int n_items, n_resumed, n_run; /* items of this shard; finished by earlier runs; run now */
    int running;            /* 1 when a failure came after the first item started */
    int n_generate, n_choice, n_perplexity;
    int n_correct;          /* generate and choice items answered correctly */
    double accuracy;        /* 100 n_correct / (n_generate + n_choice); NAN without them */
    double mean_score;      /* of the generate and choice items' scores (0..100) */
    int n_number, n_strict, n_flexible; /* number items; correct by strict-match, flexible-extract */
    int n_acc, n_acc_norm, n_acc_bytes; /* choice items correct by the sums, per character, per byte */
    int n_stop_unmet;       /* generate items that met no stop string and ran to max_new */
    int n_labels[RH_N_LABELS]; /* generate items of each label */
    long n_tokens;          /* perplexity: tokens scored */
    double nll, perplexity; /* their summed NLL (nats) and exp(nll / n_tokens) */
    long n_copy_tokens;     /* of them, the copyable ones: they continue an earlier occurrence of
                               their preceding bigram in the window */
    double copy_nll;
    char *mask_label;       /* "none", "top-3: 2-0 3-0 3-1", ... ("mixed" when rescored records differ) */
    char *kv_label;         /* the KV policy, as rh_experiment_result's */
    double kv_bytes, kv_full_bytes; /* the KV cache of the run's context, and without the policy */
    char *paths[3];         /* BASE.jsonl, BASE.csv, BASE.run.json */
} rh_eval_result;

/* Defaults as the command line has them: model weights/demo.rhw, max_new 256, seed 1, one
 * shard, output "eval". */
void rh_eval_task_default(rh_eval_task *t);
/* Run it: every item (this shard's, resuming finished ones), then the outputs; or, with
 * rescore, recompute a finished run's metrics.  Returns RH_OK or a negative code with the
 * message in err; res (may be NULL) gets the figures. */
int rh_eval_task_run(const rh_eval_task *t, rh_eval_result *res, char *err, size_t errcap);
void rh_eval_result_free(rh_eval_result *r);

/* The command line of the program for programs that embed it: argv[0] names the command
 * (info, generate, logits, tokenize, bench, detect, niah, eval, report, compare), the rest are its
 * arguments.  Returns the exit status (0 ok, 1 a failure while running, 2 bad usage or bad
 * input).  Unlike the rest of the library it prints (stdout: results, stderr: progress and
 * errors), as the program does. */
int rh_cli(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif /* RETRIEVAL_HEADS_H */
