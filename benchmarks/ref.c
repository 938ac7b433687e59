/* The d2l weight-decay run as a tight C loop: the speed reference of benchmarks/run.py.
 *
 * Minibatch SGD on (X w + b - y)^2 / 2 + lambd ||w||^2 / 2 exactly as the books (and wdlib's eager
 * path) do it, in float32, with the whole-set train and test losses recorded after every epoch.
 * Built by benchmarks/run.py with `cc -O3 -march=native` and -ffast-math's reassociation flags (vectorized
 * loops: the fastest plain C here; not -ffast-math itself, which would set flush-to-zero for the whole
 * process), `-fopenmp -shared -fPIC`, and called through ctypes.
 */
#include <omp.h>
#include <stddef.h>

static double mean_loss(int n, int p, const float *X, const float *y, const float *w, float b) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        float r = b - y[i];
        for (int j = 0; j < p; j++) r += X[(size_t)i * p + j] * w[j];
        total += (double)(r * r / 2);
    }
    return total / n;
}

void run_f32(int n, int p, int n_test, int epochs, int bs, float lr, float lambd,
             const float *X, const float *y, const float *Xt, const float *yt, const long long *order,
             float *w, float *b, float *g, float *r, double *train, double *test) {
    for (int e = 0; e < epochs; e++) {
        const long long *idx = order + (size_t)e * n;
        for (int s = 0; s < n; s += bs) {
            int m = s + bs <= n ? bs : n - s;
            float gb = 0;
            for (int i = 0; i < m; i++) {
                const float *x = X + (size_t)idx[s + i] * p;
                float ri = *b - y[idx[s + i]];
                for (int j = 0; j < p; j++) ri += x[j] * w[j];
                r[i] = ri;
                gb += ri;
            }
            for (int j = 0; j < p; j++) g[j] = m * lambd * w[j];
            for (int i = 0; i < m; i++) {
                const float *x = X + (size_t)idx[s + i] * p;
                for (int j = 0; j < p; j++) g[j] += r[i] * x[j];
            }
            for (int j = 0; j < p; j++) w[j] -= lr * g[j] / bs;
            *b -= lr * gb / bs;
        }
        train[e] = mean_loss(n, p, X, y, w, *b);
        test[e] = mean_loss(n_test, p, Xt, yt, w, *b);
    }
}

/* The large-problem reference: the same SGD epochs without evaluation, each row's residual and its
 * gradient term computed while the row is in cache, so X is read from memory once per epoch, in the
 * epoch's random row order (the least traffic any implementation of this SGD can have). */
void epochs_f32(int n, int p, int epochs, int bs, float lr, float lambd, const float *X, const float *y,
                const long long *order, float *w, float *b, float *g) {
    for (int e = 0; e < epochs; e++) {
        const long long *idx = order + (size_t)e * n;
        for (int s = 0; s < n; s += bs) {
            int m = s + bs <= n ? bs : n - s;
            float gb = 0;
            for (int j = 0; j < p; j++) g[j] = m * lambd * w[j];
            for (int i = 0; i < m; i++) {
                const float *x = X + (size_t)idx[s + i] * p;
                float ri = *b - y[idx[s + i]];
                for (int j = 0; j < p; j++) ri += x[j] * w[j];
                gb += ri;
                for (int j = 0; j < p; j++) g[j] += ri * x[j];
            }
            for (int j = 0; j < p; j++) w[j] -= lr * g[j] / bs;
            *b -= lr * gb / bs;
        }
    }
}

/* The same epochs on two threads (OpenMP), as wdlib's large-data path runs them: each thread takes half
   of every minibatch's rows into its own half of g (2 p floats), the halves summed after. */
void epochs2_f32(int n, int p, int epochs, int bs, float lr, float lambd, const float *X, const float *y,
                 const long long *order, float *w, float *b, float *g) {
    for (int e = 0; e < epochs; e++) {
        const long long *idx = order + (size_t)e * n;
        for (int s = 0; s < n; s += bs) {
            int m = s + bs <= n ? bs : n - s, half = (m + 1) / 2;
            float gb[2] = {0, 0};
            #pragma omp parallel num_threads(2)
            {
                int t = omp_get_thread_num();
                float *gt = g + (size_t)t * p, gbt = 0;
                for (int j = 0; j < p; j++) gt[j] = 0;
                for (int i = t ? half : 0; i < (t ? m : half); i++) {
                    const float *x = X + (size_t)idx[s + i] * p;
                    float ri = *b - y[idx[s + i]];
                    for (int j = 0; j < p; j++) ri += x[j] * w[j];
                    gbt += ri;
                    for (int j = 0; j < p; j++) gt[j] += ri * x[j];
                }
                gb[t] = gbt;
            }
            for (int j = 0; j < p; j++) w[j] -= lr * (m * lambd * w[j] + g[j] + g[p + j]) / bs;
            *b -= lr * (gb[0] + gb[1]) / bs;
        }
    }
}

/* A sequential read of n floats: the machine's streaming bandwidth for one core. */
double sum_f32(long long n, const float *x) {
    float s = 0;
    for (long long i = 0; i < n; i++) s += x[i];
    return s;
}
