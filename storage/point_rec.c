/*
 * storage/point_rec.c -- the layout of a `points` record, the one place that knows it.
 *
 * A record is the external id (8 bytes, big-endian) then the dim floats of the vector as
 * given. An on_disk cosine collection stores instead the unit vector its index scores
 * (qv_normalize: the floats an in-memory index holds for the same input, bit for bit)
 * followed by the vector's norm as a double, 8 + 4 * dim + 8 bytes:
 *   - its index re-scores with unit vectors read in place from LMDB's map (vec_source.c),
 *     with no normalized copy per read, as l2 and ip collections do;
 *   - qv_get gives back unit * norm, the vector as given to within one float rounding
 *     (relative 1.2e-7 per component; a cosine collection in memory returns it exactly),
 *     so every collection returns the vectors it was given, as Quiver always has (Qdrant
 *     returns the normalized vector of a Cosine collection; Quiver keeps what it had);
 *   - the floats still start at record + 8 and the record stays a multiple of 4 bytes, so
 *     they keep the 4-byte alignment vec_source.c relies on.
 * Such collections are new (config format 4 refused on_disk with cosine until now; a build
 * from before this change refuses the collection at open rather than misread it), so no
 * existing record changes form.
 */
#include "storage/storage.h"

#include <math.h>
#include <string.h>

#include "core/distance.h"

int qv_point_rec_keeps_unit(const qv_coll *c)
{
    return c->vdef.on_disk && c->params.metric == QV_METRIC_COSINE;
}

size_t qv_point_rec_size(const qv_coll *c)
{
    return 8 + (size_t)c->params.dim * sizeof(float) + (qv_point_rec_keeps_unit(c) ? sizeof(double) : 0);
}

void qv_point_rec_put(const qv_coll *c, void *rec, uint64_t ext, const float *vec, float *unit)
{
    size_t dim = c->params.dim;
    uint8_t *p = rec;
    qv_be64_put(p, ext);
    if (!qv_point_rec_keeps_unit(c)) {
        memcpy(p + 8, vec, dim * sizeof(float));
        return;
    }
    double nsq = 0.0;
    for (size_t i = 0; i < dim; i++) nsq += (double)vec[i] * (double)vec[i];
    double norm = sqrt(nsq);              /* > 0: a cosine vector was checked non-zero */
    memcpy(unit, vec, dim * sizeof(float));
    qv_normalize(unit, dim);
    memcpy(p + 8, unit, dim * sizeof(float));
    memcpy(p + 8 + dim * sizeof(float), &norm, sizeof norm);
}

void qv_point_rec_vector(const qv_coll *c, const void *rec, float *out)
{
    size_t dim = c->params.dim;
    const uint8_t *p = rec;
    memcpy(out, p + 8, dim * sizeof(float));
    if (!qv_point_rec_keeps_unit(c)) return;
    double norm;
    memcpy(&norm, p + 8 + dim * sizeof(float), sizeof norm);
    for (size_t i = 0; i < dim; i++) out[i] = (float)((double)out[i] * norm);
}
