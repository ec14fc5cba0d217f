/* Passport keys (REFERENCE.md section 1, "key type"): the tensors P_gamma,
 * P_beta of every passport layer of a model, generated the way DeepIPR
 * builds real and fake passports.
 *
 * A model's keys as one flat "key vector": for passport layer l = 0, 1, ...
 * (m->passports order) the gamma key then the beta key, each of the shape of
 * ONE input sample of that layer's conv, (Cin, H, W). ip_keys_floats() is its
 * length; ip_keys_from_model / ip_keys_to_model move it in and out of a model.
 *
 * Key types:
 *   random   every value uniform in [-1, 1);
 *   image    one image for P_gamma and another for P_beta, each drawn from a
 *            dataset and run through a REFERENCE model (same architecture,
 *            normally the baseline, eval mode): the key of a layer is the
 *            activation that feeds that layer's conv (the image itself when
 *            the conv reads the network input);
 *   shuffle  20 images for P_gamma and 20 others for P_beta through the
 *            reference model; channel k of a layer's key is a randomly chosen
 *            channel of the activation of image (k mod 20), never the same
 *            (image, channel) twice (DeepIPR's passport_selection); when the
 *            conv reads the network input, a whole image chosen at random
 *            among the 20 is the key.
 * Every passport is a pure function of (seed, index): its numbers come from
 * the stream ip_stream("passport-key", index), and the reference model runs
 * on exactly that passport's images (a batch of 2 or 40), so a passport is
 * bit-identical whichever task, shard or rank generates it.
 *
 * The feature cache (ip_keygen_cache_features). A shuffle key reads 40
 * images, so thousands of fakes read every image of the pool many times
 * (the quick study: 2,500 fakes per shard, 100,000 draws from 12,000
 * images; their reference forwards were 70% of its shuffle shards' time).
 * With the cache the reference runs once over the whole pool, in passes of
 * IP_KEYGEN_PASS images by index (image j in pass j / IP_KEYGEN_PASS), and
 * keys read the activations kept there: a passport is still a pure function
 * of (seed, index, images), whichever task, shard or rank generates it.
 * Whether the cache is used is a function of the key type and the sizes
 * only (ip_keygen_caches), never of the machine's memory, so results do not
 * depend on where they are computed. */
#ifndef IP_PASSPORT_KEYS_H
#define IP_PASSPORT_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "../io/data.h"
#include "../util/err.h"
#include "../model/model.h"

typedef enum { IP_KEY_RANDOM = 0, IP_KEY_IMAGE = 1, IP_KEY_SHUFFLE = 2 } ip_key_type;

#define IP_SHUFFLE_IMAGES 20
/* Feature cache: images per reference pass, and the most it may hold. */
#define IP_KEYGEN_PASS 64
#define IP_KEYGEN_CACHE_MAX_BYTES ((size_t)1 << 30)

const char *ip_key_type_name(ip_key_type t);
int ip_key_type_parse(const char *s, ip_key_type *out);

/* Floats of one key vector, and where passport layer l's gamma key starts in
 * it (its beta key follows after ip_keys_layer_floats(m, l) floats). */
size_t ip_keys_floats(const ip_model *m);
size_t ip_keys_offset(const ip_model *m, int layer);
size_t ip_keys_layer_floats(const ip_model *m, int layer);
/* Copies the model's keys out / in (ip_keys_to_model calls ip_model_passports_changed). */
void ip_keys_from_model(const ip_model *m, float *keys);
void ip_keys_to_model(ip_model *m, const float *keys);
/* Fails unless a and b have the same passport layers: same names, key shapes and output channels. */
int ip_keys_compatible(const ip_model *a, const ip_model *b, ip_err *e);

typedef struct ip_keygen {
    ip_key_type type;
    uint64_t seed;
    const ip_model *target;           /* the model the keys are for (shapes only) */
    ip_model *ref;                    /* image/shuffle: the reference model (planned here for 40 samples) */
    const ip_dataset *images;         /* image/shuffle: normalised for ref */
    int ref_act[IP_MAX_PASSPORTS];    /* ref activation feeding passport layer l's conv; -1 = the network input */
    int ref_last;                     /* the one of them the forward reaches last; -1: no forward needed */
    float *x;                         /* (40, C, H, W) staging of the reference batch */
    uint8_t *taken;                   /* shuffle: (20 x max Cin) flags */
    size_t taken_len;
    /* image/shuffle: 0 = the reference runs in eval mode on the gamma and beta
     * images together; 1 = as the DeepIPR authors' set_intermediate_keys does
     * with a freshly built reference: train mode (batch statistics), the gamma
     * images and the beta images passing separately (each batch its own
     * statistics). Set after ip_keygen_init. */
    int ref_training;
    /* The activations keys read, per image: cache_floats floats, layer l's
     * (a ref_act[l] >= 0) at cache_off[l] (layers reading one activation share it). */
    size_t cache_floats;
    size_t cache_off[IP_MAX_PASSPORTS];
    float *cache;                     /* (images, cache_floats) once ip_keygen_cache_features filled it, else NULL */
} ip_keygen;

/* Prepares key generation for `target`'s passport layers. ref and images are
 * required for image/shuffle (ignored for random): ref must have a conv of the
 * same name as each passport layer's conv whose input has the key's shape,
 * and images must match ref's input (shuffle needs at least 20 images). */
int ip_keygen_init(ip_keygen *g, ip_key_type type, const ip_model *target, ip_model *ref,
                   const ip_dataset *images, uint64_t seed, ip_err *e);
/* Writes the key vector of passport `index` (ip_keys_floats(target) floats). */
int ip_keygen_generate(ip_keygen *g, uint64_t index, float *keys, ip_err *e);

/* 1 when keys of this type read their activations from the feature cache:
 * shuffle keys (an image key reads 2 images, a pool's worth only after
 * thousands of fakes), with the reference in eval mode (in train mode an
 * image's activations depend on its batch), when `images` images of
 * `floats_per_image` (ip_keygen.cache_floats) fit IP_KEYGEN_CACHE_MAX_BYTES.
 * The cost model (runner/kinds/forge.c) asks the same question. */
int ip_keygen_caches(ip_key_type type, int ref_training, size_t floats_per_image, size_t images);
/* Fills the feature cache when ip_keygen_caches says so (after ref_training
 * is set), else does nothing. For generators of many keys (fake1, verify):
 * it costs a forward of the whole pool. */
int ip_keygen_cache_features(ip_keygen *g, ip_err *e);
void ip_keygen_free(ip_keygen *g);

#endif
