// Dynamic shared memory of a block: [red_a: nt doubles][red_b: nt doubles]
// [w: n T][red_i: nt ints]; see ldl_shared_bytes() on the Python side.
extern __shared__ double ldl_smem[];

template <typename U>
__device__ U ldl_max(U a, U b)
{
    // Python's max(a, b): a unless b is larger
    return b > a ? b : a;
}

__device__ double ldl_abs(double a) { return fabs(a); }
__device__ float ldl_abs(float a) { return fabsf(a); }

// Maxima of a and b over the threads of the block, returned to every thread.
__device__ void ldl_block_max2(double* a, double* b, double* red_a, double* red_b)
{
    const int tid = threadIdx.x, nt = blockDim.x;
    red_a[tid] = *a;
    red_b[tid] = *b;
    __syncthreads();
    int p = 1;
    while (p < nt) p <<= 1;
    for (int s = p >> 1; s > 0; s >>= 1) {
        if (tid < s && tid + s < nt) {
            red_a[tid] = ldl_max(red_a[tid], red_a[tid + s]);
            red_b[tid] = ldl_max(red_b[tid], red_b[tid + s]);
        }
        __syncthreads();
    }
    *a = red_a[0];
    *b = red_b[0];
    __syncthreads();  // red_* may be reused right away
}

// GMW pivot: the position q >= j with the largest |C[q, q]|, the smallest perm[q] on
// ties (numba's serial scan picks the same unique lexicographic maximum).
template <typename T>
__device__ int ldl_pivot(const T* C, const long long* perm, int n, int j,
                         double* red_a, int* red_i)
{
    const int tid = threadIdx.x, nt = blockDim.x;
    double best = -1.0;
    int q = -1;
    for (int i = j + tid; i < n; i += nt) {
        const double a = (double)ldl_abs(C[(long long)i * n + i]);
        if (q < 0 || a > best || (a == best && perm[i] < perm[q])) {
            q = i;
            best = a;
        }
    }
    red_a[tid] = best;
    red_i[tid] = q;
    __syncthreads();
    int p = 1;
    while (p < nt) p <<= 1;
    for (int s = p >> 1; s > 0; s >>= 1) {
        if (tid < s && tid + s < nt) {
            const int q2 = red_i[tid + s];
            const double a2 = red_a[tid + s];
            const int q1 = red_i[tid];
            if (q2 >= 0 && (q1 < 0 || a2 > red_a[tid]
                            || (a2 == red_a[tid] && perm[q2] < perm[q1]))) {
                red_a[tid] = a2;
                red_i[tid] = q2;
            }
        }
        __syncthreads();
    }
    q = red_i[0];
    __syncthreads();
    return q;
}

// Swap rows and columns j < q of the symmetric matrix held in the lower triangle of C,
// with rows j, q of the finished columns of L (and their copy Lt above the diagonal when
// keep_upper). The n - 1 swapped pairs are disjoint: one per thread-loop index t.
template <typename T>
__device__ void ldl_swap(T* C, int n, int j, int q, bool keep_upper)
{
    const int tid = threadIdx.x, nt = blockDim.x;
    for (int t = tid; t < n - 1; t += nt) {
        T* a;
        T* b;
        if (t < j) {  // finished columns k = t of L (rows j, q), and Lt above
            a = C + (long long)j * n + t;
            b = C + (long long)q * n + t;
            if (keep_upper) {
                T* c = C + (long long)t * n + j;
                T* g = C + (long long)t * n + q;
                const T tmp = *c;
                *c = *g;
                *g = tmp;
            }
        } else if (t == j) {  // the two diagonal entries
            a = C + (long long)j * n + j;
            b = C + (long long)q * n + q;
        } else if (t < q) {  // k = t strictly between j and q: C[k, j] <-> C[q, k]
            a = C + (long long)t * n + j;
            b = C + (long long)q * n + t;
        } else {  // i = t + 1 > q: C[i, j] <-> C[i, q]
            a = C + (long long)(t + 1) * n + j;
            b = C + (long long)(t + 1) * n + q;
        }
        const T tmp = *a;
        *a = *b;
        *b = tmp;
    }
    __syncthreads();
}

// Factorise C (n x n, row major, lower triangle read) in place: on return its strict
// lower triangle holds L (pivoted order), its strict upper triangle Lt if keep_upper.
// perm, d receive the pivot order and D; e the modification in the original order.
template <typename T>
__device__ void ldl_factor_one(T* C, long long* perm, T* d, T* e, T* w, double* red_a,
                               double* red_b, int* red_i, int n, double eps,
                               bool keep_upper)
{
    const int tid = threadIdx.x, nt = blockDim.x;
    // GMW bounds, in double precision as numba forms them for both dtypes
    double gamma = 0.0, xi = 0.0;
    for (int i = 0; i < n; ++i) {
        const T* Ci = C + (long long)i * n;
        if (i % nt == tid) gamma = ldl_max(gamma, (double)ldl_abs(Ci[i]));
        for (int k = tid; k < i; k += nt) xi = ldl_max(xi, (double)ldl_abs(Ci[k]));
    }
    for (int i = tid; i < n; i += nt) perm[i] = i;
    ldl_block_max2(&gamma, &xi, red_a, red_b);  // also publishes perm
    const double delta = eps * ldl_max(gamma + xi, 1.0);
    double beta2 = ldl_max(gamma, eps);
    if (n > 1) beta2 = ldl_max(beta2, xi / sqrt((double)n * (double)n - 1.0));

    // rows are shared out in groups of W consecutive threads (a warp on the GPU)
    const int W = nt < 32 ? nt : 32;
    const int G = nt / W;
    const int lane = tid % W, grp = tid / W;

    for (int j = 0; j < n; ++j) {
        const int q = ldl_pivot(C, perm, n, j, red_a, red_i);
        if (q != j) {
            if (tid == 0) {
                const long long tmp = perm[j];
                perm[j] = perm[q];
                perm[q] = tmp;
            }
            ldl_swap(C, n, j, q, keep_upper);  // ends with a barrier
        }
        const T cjj = C[(long long)j * n + j];
        double theta = 0.0, unused = 0.0;
        for (int i = j + 1 + tid; i < n; i += nt) {
            w[i] = C[(long long)i * n + j];
            theta = ldl_max(theta, (double)ldl_abs(w[i]));
        }
        ldl_block_max2(&theta, &unused, red_a, red_b);  // also publishes w
        // d_j = max(|c_jj|, θ²/β², δ) in double, then rounded to T (numba's float32 path)
        const T dj = (T)ldl_max(ldl_max((double)ldl_abs(cjj), theta * theta / beta2),
                                delta);
        if (tid == 0) {
            d[j] = dj;
            e[perm[j]] = dj - cjj;
        }
        if (grp < G) {
            for (int i = j + 1 + grp; i < n; i += G) {
                const T li = w[i] / dj;
                T* Ci = C + (long long)i * n;
                for (int k = j + 1 + lane; k <= i; k += W) Ci[k] -= li * w[k];
                if (lane == 0) {
                    Ci[j] = li;
                    if (keep_upper) C[(long long)j * n + i] = li;
                }
            }
        }
        __syncthreads();
    }
}

// x (n, r) = solution of (H + E) x = b (n, r) with the factors in C/perm/d; y (n) is
// shared scratch. L is read from the strict lower triangle of C, or column by column
// from its copy Lt in the upper triangle when upper_holds_Lt (coalesced).
template <typename T>
__device__ void ldl_solve_one(const T* C, const long long* perm, const T* d, const T* b,
                              T* x, T* y, int n, int r, bool upper_holds_Lt)
{
    const int tid = threadIdx.x, nt = blockDim.x;
    for (int s = 0; s < r; ++s) {
        for (int i = tid; i < n; i += nt) y[i] = b[perm[i] * r + s];
        __syncthreads();
        // forward: y_i -= l_ik y_k for k = 0, 1, ... (numba's order for every i)
        for (int k = 0; k < n; ++k) {
            const T yk = y[k];
            if (upper_holds_Lt) {
                const T* Ck = C + (long long)k * n;
                for (int i = k + 1 + tid; i < n; i += nt) y[i] -= Ck[i] * yk;
            } else {
                for (int i = k + 1 + tid; i < n; i += nt) y[i] -= C[(long long)i * n + k] * yk;
            }
            __syncthreads();
        }
        for (int i = tid; i < n; i += nt) y[i] /= d[i];
        __syncthreads();
        // backward: y_k -= l_ik y_i for i = n-1, n-2, ...
        for (int i = n - 1; i >= 0; --i) {
            const T yi = y[i];
            const T* Ci = C + (long long)i * n;
            for (int k = tid; k < i; k += nt) y[k] -= Ci[k] * yi;
            __syncthreads();
        }
        for (int i = tid; i < n; i += nt) x[perm[i] * r + s] = y[i];
        __syncthreads();
    }
}

// Shared-memory carving (the same for the three kernels).
template <typename T>
__device__ void ldl_carve(int n, double** red_a, double** red_b, T** w, int** red_i)
{
    const int nt = blockDim.x;
    *red_a = ldl_smem;
    *red_b = ldl_smem + nt;
    *w = (T*)(ldl_smem + 2 * nt);
    *red_i = (int*)(*w + n);
}

// modified_ldl: L (K, n, n) is the work matrix; H's lower triangle is copied in.
template <typename T>
__global__ void ldl_factor_kernel(const T* H, T* L, T* d, long long* perm, T* e, int K,
                                  int n, double eps)
{
    double *red_a, *red_b;
    T* w;
    int* red_i;
    ldl_carve(n, &red_a, &red_b, &w, &red_i);
    const int tid = threadIdx.x, nt = blockDim.x;
    const long long nn = (long long)n * n;
    for (long long b = blockIdx.x; b < K; b += gridDim.x) {
        const T* Hb = H + b * nn;
        T* C = L + b * nn;
        for (long long t = tid; t < nn; t += nt)
            if (t % n <= t / n) C[t] = Hb[t];
        __syncthreads();
        ldl_factor_one(C, perm + b * n, d + b * n, e + b * n, w, red_a, red_b, red_i, n,
                       eps, false);
        for (long long t = tid; t < nn; t += nt) {
            const long long i = t / n, k = t % n;
            if (k == i) C[t] = (T)1;
            else if (k > i) C[t] = (T)0;
        }
        __syncthreads();
    }
}

// modified_ldl_solve: block slot blockIdx.x owns work (n, n), dwork (n), pwork (n).
template <typename T>
__global__ void ldl_factor_solve_kernel(const T* H, const T* rhs, T* x, T* e, T* work,
                                        T* dwork, long long* pwork, int K, int n, int r,
                                        double eps)
{
    double *red_a, *red_b;
    T* w;
    int* red_i;
    ldl_carve(n, &red_a, &red_b, &w, &red_i);
    const int tid = threadIdx.x, nt = blockDim.x;
    const long long nn = (long long)n * n;
    T* C = work + blockIdx.x * nn;
    T* dd = dwork + (long long)blockIdx.x * n;
    long long* pp = pwork + (long long)blockIdx.x * n;
    for (long long b = blockIdx.x; b < K; b += gridDim.x) {
        const T* Hb = H + b * nn;
        for (long long t = tid; t < nn; t += nt)
            if (t % n <= t / n) C[t] = Hb[t];
        __syncthreads();
        ldl_factor_one(C, pp, dd, e + b * n, w, red_a, red_b, red_i, n, eps, true);
        ldl_solve_one(C, pp, dd, rhs + b * n * r, x + b * n * r, w, n, r, true);
    }
}

// ldl_solve: factors from modified_ldl (L with zeros above the diagonal).
template <typename T>
__global__ void ldl_solve_kernel(const T* L, const T* d, const long long* perm,
                                 const T* rhs, T* x, int K, int n, int r)
{
    double *red_a, *red_b;
    T* w;
    int* red_i;
    ldl_carve(n, &red_a, &red_b, &w, &red_i);
    const long long nn = (long long)n * n;
    for (long long b = blockIdx.x; b < K; b += gridDim.x)
        ldl_solve_one(L + b * nn, perm + b * n, d + b * n, rhs + b * n * r,
                      x + b * n * r, w, n, r, false);
}
