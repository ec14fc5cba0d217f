/* Checkpoints in HDF5 (docs/checkpoint.md): one float32 dataset per tensor in
 * PyTorch layout under /params/<layer>/<field>, running statistics under
 * /buffers/<layer>/<field>, passports and signature bits under
 * /passport/<layer>/{gamma_key,beta_key,sig_bits} (+ attribute "signature"),
 * root attributes for arch, scheme, norm, passport_layers, input shape,
 * classes and format version; a v3 model's trigger set under /trigger/{images,labels}. Written to "<path>.tmp.<pid>" and renamed, so
 * a reader never sees a half-written file. */
#ifndef IP_CKPT_H
#define IP_CKPT_H

#include "../util/err.h"
#include "../model/model.h"

#define IP_CKPT_FORMAT_VERSION 1
/* the `construction` attribute of /trigger (v3; docs/checkpoint.md) */
#define IP_CKPT_TRIGGER_CONSTRUCTION "block noise (4x4-pixel cells, 8-bit levels), uniform random labels (docs/passports.md)"

int ip_ckpt_save(const ip_model *m, const char *path, ip_err *e);
/* Reads the configuration attributes only (to build the model before loading). */
int ip_ckpt_read_cfg(const char *path, ip_model_cfg *cfg, ip_err *e);
/* Loads every tensor of an already built model, checking each shape; a
 * missing, truncated, corrupt or mismatched file gives a clear error and
 * leaves no partial state worth using. Calls ip_model_passports_changed(). */
int ip_ckpt_load(ip_model *m, const char *path, ip_err *e);
/* ip_ckpt_read_cfg + ip_model_build + ip_ckpt_load. */
int ip_ckpt_open_model(ip_model *m, const char *path, ip_err *e);
/* Builds m (owning no memory yet) as ip_ckpt_open_model would from the file
 * that src was opened from, without reading it: file_cfg is what
 * ip_ckpt_read_cfg gave for that file, src a model ip_ckpt_open_model
 * opened from it and that nothing has changed since (core/io/cache.c keeps
 * such masters). The copy shares no memory with src. */
int ip_ckpt_copy_loaded(ip_model *m, const ip_model *src, const ip_model_cfg *file_cfg, ip_err *e);

#endif
