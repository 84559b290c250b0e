// Compiled CPU tile rasterizer: forward and backward of 3DGS front-to-back compositing.
//
// The same image formation as soundmask/splat/raster_dense.py (the oracle) and raster_tile.py (the pure-PyTorch
// fallback): for each pixel, the Gaussians binned to its tile, in depth order,
//   alpha_i = min(ALPHA_MAX, o_i exp(power_i)),  power_i = -1/2 (a dx^2 + c dy^2) - b dx dy  (skipped when
//   power_i > 0 or o_i exp(power_i) < ALPHA_MIN),  out = sum_i alpha_i T_i v_i,  T_i = prod_{j<i} (1 - alpha_j).
// Early termination as in 3DGS / gsplat: a pixel stops once its transmittance falls below t_min (after
// compositing the Gaussian that brought it there, so what is skipped weighs less than t_min in all).
// The value vector v carries every channel (colour, features, depth, and a constant 1 for the accumulated
// alpha); background is added by the caller.
//
// Parallel over tiles on torch's thread count (torch.set_num_threads applies), tiles handed out dynamically.
// The backward walks each pixel's contributors back to front, recovering T_i from the stored final
// transmittance (T_i = T_{i+1} / (1 - alpha_i)), and accumulates per (Gaussian, tile) pair, so no two threads
// ever write the same slot; the pairs are then summed per Gaussian.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

namespace {

struct Geometry {
  int64_t nx, ny, ts, width, height;
};

// One tile's pairs, prepared for the per-pixel loops: per pair mx, my, a, b, c, o, and the power below which
// o exp(power) < alpha_min (a cheap test before exp, with a margin so that rounding never skips a Gaussian the
// exact test keeps); its K values; and per pixel row of the tile, the pairs whose footprint reaches that row and
// the column span they cover (CSR, depth order kept), so that a pixel only visits Gaussians that can touch it.
template <typename T>
struct TilePairs {
  std::vector<T> geo, val;
  std::vector<int32_t> row_start, row_pair, col_lo, col_hi;

  void gather(const T* mu, const T* con, const T* op, const T* vals, const int64_t* gi, int64_t lo, int64_t hi,
              int64_t K, double alpha_min, int64_t x0, int64_t y0, int64_t rows) {
    const int64_t n = hi - lo;
    geo.resize(7 * n);
    val.resize(K * n);
    col_lo.resize(n);
    col_hi.resize(n);
    std::vector<int32_t> r_lo(n), r_hi(n);
    row_start.assign(rows + 1, 0);
    for (int64_t p = 0; p < n; ++p) {
      const int64_t g = gi[lo + p];
      T* d = &geo[7 * p];
      d[0] = mu[2 * g];
      d[1] = mu[2 * g + 1];
      d[2] = con[3 * g];
      d[3] = con[3 * g + 1];
      d[4] = con[3 * g + 2];
      d[5] = op[g];
      d[6] = d[5] > T(0) ? T(std::log(alpha_min / double(d[5])) - 1e-3) : T(INFINITY);
      std::copy(vals + K * g, vals + K * (g + 1), &val[K * p]);
      // the footprint d^T Q d <= 2 log(o / alpha_min) has half-widths sqrt(r2 c / det), sqrt(r2 a / det)
      const double a = d[2], b = d[3], c = d[4], det = a * c - b * b;
      const double r2 = 2.0 * std::log(std::max(double(d[5]) / alpha_min, 1.0)) * 1.001 + 1e-3;
      double ex = det > 0 ? std::sqrt(r2 * c / det) : INFINITY, ey = det > 0 ? std::sqrt(r2 * a / det) : INFINITY;
      ex = std::min(ex, 1e7);
      ey = std::min(ey, 1e7);
      // pixel x has its centre at x + 0.5
      col_lo[p] = int32_t(std::clamp<double>(std::ceil(d[0] - ex - 0.5 - 1e-3) - x0, 0, 1 << 20));
      col_hi[p] = int32_t(std::clamp<double>(std::floor(d[0] + ex - 0.5 + 1e-3) - x0, -1, 1 << 20));
      r_lo[p] = int32_t(std::clamp<double>(std::ceil(d[1] - ey - 0.5 - 1e-3) - y0, 0, double(rows)));
      r_hi[p] = int32_t(std::clamp<double>(std::floor(d[1] + ey - 0.5 + 1e-3) - y0, -1, double(rows - 1)));
      for (int32_t r = r_lo[p]; r <= r_hi[p]; ++r) row_start[r + 1]++;
    }
    for (int64_t r = 0; r < rows; ++r) row_start[r + 1] += row_start[r];
    row_pair.resize(row_start[rows]);
    std::vector<int32_t> fill(row_start.begin(), row_start.end() - 1);
    for (int64_t p = 0; p < n; ++p)
      for (int32_t r = r_lo[p]; r <= r_hi[p]; ++r) row_pair[fill[r]++] = int32_t(p);
  }
};

// Runs body(tile) for every tile on torch's thread count (torch.set_num_threads applies), tiles handed out
// dynamically so that uneven tiles balance out. Built with -fopenmp, this file's libgomp.so.1 is the one torch
// already loaded (same soname), so these threads are torch's OpenMP pool, not a second one spinning beside it.
template <typename F>
void for_each_tile(int64_t n_tiles, F&& body) {
  const int threads = at::in_parallel_region() ? 1 : int(std::max<int64_t>(1, at::get_num_threads()));
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int64_t t = 0; t < n_tiles; ++t) body(t);
}

// exp for power <= 0 that the compiler can vectorise (Cody-Waite range reduction and a degree-6 polynomial,
// as Cephes' expf; within 2 ulp of std::exp on [-30, 0]). Powers below -30 are clamped to it: exp(-30) ~ 1e-13 is
// far below any alpha_min / opacity, so those lanes are skipped exactly as with std::exp, and no denormal (whose
// arithmetic takes a microcode assist, ~100 cycles) ever reaches the lanes far from a Gaussian.
template <typename T>
inline T fast_exp(T x) {
  x = x < T(-30) ? T(-30) : (x > T(0) ? T(0) : x);
  const T k = std::floor(x * T(1.44269504088896341) + T(0.5));
  const T r = x - k * T(0.693359375) - k * T(-2.12194440e-4);
  T p = T(1.9875691500e-4);
  p = p * r + T(1.3981999507e-3);
  p = p * r + T(8.3334519073e-3);
  p = p * r + T(4.1665795894e-2);
  p = p * r + T(1.6666665459e-1);
  p = p * r + T(5.0000001201e-1);
  const T y = p * r * r + r + T(1);
  return y * std::ldexp(T(1), int(k));
}

template <>
inline float fast_exp(float x) {
  x = x < -30.f ? -30.f : (x > 0.f ? 0.f : x);
  const float k = std::floor(x * 1.44269504088896341f + 0.5f);
  const float r = x - k * 0.693359375f - k * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.f;
  const int32_t bits = (int32_t(k) + 127) << 23;  // 2^k, k in [-43, 0]
  return y * __builtin_bit_cast(float, bits);
}

constexpr int L = 16;  // lanes: the pixels of one tile row (tile size <= 16)

// The lanes [B, B + N) of one tile row a pair can reach: the half of the row its footprint's columns fall in when
// they fit in one (two 8-lane vectors are then one), else the whole row.
template <typename F>
inline void dispatch_span(int32_t col_lo, int32_t col_hi, F&& f) {
  if (col_hi < 8) {
    f(std::integral_constant<int, 0>{}, std::integral_constant<int, 8>{});
  } else if (col_lo >= 8) {
    f(std::integral_constant<int, 8>{}, std::integral_constant<int, 8>{});
  } else {
    f(std::integral_constant<int, 0>{}, std::integral_constant<int, L>{});
  }
}

// The pair's screen geometry seen from one tile row: dx of lane c is c - mx.
template <typename T>
struct RowPair {
  T mx, dy, a, b, c, o;
  inline T power(T dx) const { return T(-0.5) * (a * dx * dx + c * dy * dy) - b * dx * dy; }
};

template <typename T>
void forward_impl(const T* mu, const T* con, const T* op, const T* vals, const int64_t* gi, const int64_t* ranges,
                  int64_t K, Geometry G, double alpha_min, double alpha_max, double t_min, T* out, T* t_final,
                  int32_t* last) {
  const T amin = T(alpha_min), amax = T(alpha_max), tmin = T(t_min);
  for_each_tile(G.nx * G.ny, [&](int64_t tile) {
    const int64_t x0 = (tile % G.nx) * G.ts, y0 = (tile / G.nx) * G.ts;
    const int64_t cols = std::min(G.width - x0, G.ts), rows = std::min(G.height - y0, G.ts);
    TilePairs<T> tp;
    tp.gather(mu, con, op, vals, gi, ranges[tile], ranges[tile + 1], K, alpha_min, x0, y0, rows);
    std::vector<T> acc(K * L);
    alignas(64) T trans[L], live[L], w[L];
    alignas(64) int32_t end[L];
    for (int64_t r = 0; r < rows; ++r) {
      const T py = T(y0 + r) + T(0.5);
      std::fill(acc.begin(), acc.end(), T(0));
      for (int c = 0; c < L; ++c) {
        trans[c] = T(1);
        live[c] = c < cols ? T(1) : T(0);  // 0 once the pixel is done (or outside the image)
        end[c] = 0;
      }
      int64_t remaining = cols;
      for (int32_t i = tp.row_start[r]; i < tp.row_start[r + 1] && remaining > 0; ++i) {
        const int32_t p = tp.row_pair[i];
        const T* d = &tp.geo[7 * p];
        const RowPair<T> g{d[0] - T(x0) - T(0.5), py - d[1], d[2], d[3], d[4], d[5]};
        const int32_t pos = i + 1 - tp.row_start[r];
        const T* v = &tp.val[K * p];
        dispatch_span(tp.col_lo[p], tp.col_hi[p], [&](auto B_, auto N_) {
          constexpr int B = decltype(B_)::value, E = B + decltype(N_)::value;
#pragma omp simd
          for (int c = B; c < E; ++c) {
            const T power = g.power(T(c) - g.mx);
            const T araw = g.o * fast_exp(power);
            const T lv = live[c], tr = trans[c];
            const T ok = (power <= T(0)) & (araw >= amin) ? lv : T(0);
            const T alpha = ok * (araw < amax ? araw : amax);
            w[c] = alpha * tr;
            const T t2 = tr * (T(1) - alpha);
            trans[c] = t2;
            end[c] = ok > T(0) ? pos : end[c];
            live[c] = t2 < tmin ? T(0) : lv;
          }
          for (int64_t k = 0; k < K; ++k) {
            T* ak = &acc[k * L];
            const T vk = v[k];
#pragma omp simd
            for (int c = B; c < E; ++c) ak[c] += w[c] * vk;
          }
        });
        T n = 0;
#pragma omp simd reduction(+ : n)
        for (int c = 0; c < L; ++c) n += live[c];
        remaining = int64_t(n);
      }
      for (int64_t c = 0; c < cols; ++c) {
        const int64_t pix = (y0 + r) * G.width + x0 + c;
        for (int64_t k = 0; k < K; ++k) out[pix * K + k] = acc[k * L + c];
        t_final[pix] = trans[c];
        last[pix] = end[c];
      }
    }
  });
}

template <typename T>
void backward_impl(const T* grad, const T* mu, const T* con, const T* op, const T* vals, const int64_t* gi,
                   const int64_t* ranges, int64_t K, Geometry G, double alpha_min, double alpha_max,
                   const T* t_final, const int32_t* last, T* pair_grad /* P x (6 + K) */) {
  const int64_t S = 6 + K;
  const T amin = T(alpha_min), amax = T(alpha_max);
  for_each_tile(G.nx * G.ny, [&](int64_t tile) {
    const int64_t lo = ranges[tile];
    const int64_t x0 = (tile % G.nx) * G.ts, y0 = (tile / G.nx) * G.ts;
    const int64_t cols = std::min(G.width - x0, G.ts), rows = std::min(G.height - y0, G.ts);
    TilePairs<T> tp;
    tp.gather(mu, con, op, vals, gi, lo, ranges[tile + 1], K, alpha_min, x0, y0, rows);
    std::vector<T> gr(K * L), after(K * L);  // after: sum over later contributors of w_j v_j
    alignas(64) T trans[L], w[L], q[L], behind[L], alpha[L], araw[L], ex[L], end[L];
    for (int64_t r = 0; r < rows; ++r) {
      const T py = T(y0 + r) + T(0.5);
      int32_t top = 0;
      for (int c = 0; c < L; ++c) {
        const int64_t pix = (y0 + r) * G.width + x0 + c;
        const bool in = c < cols;
        trans[c] = in ? t_final[pix] : T(1);
        end[c] = in ? T(last[pix]) : T(0);
        top = std::max(top, in ? last[pix] : 0);
        for (int64_t k = 0; k < K; ++k) gr[k * L + c] = in ? grad[pix * K + k] : T(0);
      }
      std::fill(after.begin(), after.end(), T(0));
      for (int32_t i = tp.row_start[r] + top - 1; i >= tp.row_start[r]; --i) {
        const int32_t p = tp.row_pair[i];
        const T* d = &tp.geo[7 * p];
        const RowPair<T> g{d[0] - T(x0) - T(0.5), py - d[1], d[2], d[3], d[4], d[5]};
        const T posf = T(i - tp.row_start[r]);
        const T* v = &tp.val[K * p];
        T* out = &pair_grad[(lo + p) * S];
        dispatch_span(tp.col_lo[p], tp.col_hi[p], [&](auto B_, auto N_) {
          constexpr int B = decltype(B_)::value, E = B + decltype(N_)::value;
#pragma omp simd
          for (int c = B; c < E; ++c) {
            const T power = g.power(T(c) - g.mx);
            const T e = fast_exp(power), ar = g.o * e;
            const T in = posf < end[c] ? T(1) : T(0);  // a contributor of this pixel (not beyond its last)
            const T ok = (power <= T(0)) & (ar >= amin) ? in : T(0);
            ex[c] = e;
            araw[c] = ar;
            alpha[c] = ok * (ar < amax ? ar : amax);
            trans[c] /= T(1) - alpha[c];  // T_i, the transmittance in front of this Gaussian
            w[c] = alpha[c] * trans[c];
            q[c] = T(0);
            behind[c] = T(0);
          }
          for (int64_t k = 0; k < K; ++k) {
            const T* gk = &gr[k * L];
            T* ak = &after[k * L];
            const T vk = v[k];
            T dv = 0;
#pragma omp simd reduction(+ : dv)
            for (int c = B; c < E; ++c) {
              q[c] += gk[c] * vk;
              behind[c] += gk[c] * ak[c];
              ak[c] += w[c] * vk;
              dv += w[c] * gk[c];
            }
            out[6 + k] += dv;
          }
          T s_op = 0, s_mx = 0, s_my = 0, s_a = 0, s_b = 0, s_c = 0;
#pragma omp simd reduction(+ : s_op, s_mx, s_my, s_a, s_b, s_c)
          for (int c = B; c < E; ++c) {
            // clamped alpha (or no contribution) does not depend on the Gaussian
            const bool free = (alpha[c] > T(0)) & (araw[c] < amax);
            const T d_alpha = free ? trans[c] * q[c] - behind[c] / (T(1) - alpha[c]) : T(0);
            const T d_power = d_alpha * araw[c];
            const T dx = T(c) - g.mx;
            s_op += d_alpha * ex[c];  // d alpha / d opacity = exp(power)
            s_mx += d_power * (g.a * dx + g.b * g.dy);  // d power / d mu = -(d power / d dx)
            s_my += d_power * (g.c * g.dy + g.b * dx);
            s_a += d_power * dx * dx;
            s_b += d_power * dx * g.dy;
            s_c += d_power * g.dy * g.dy;
          }
          out[0] += s_mx;
          out[1] += s_my;
          out[2] += T(-0.5) * s_a;
          out[3] -= s_b;
          out[4] += T(-0.5) * s_c;
          out[5] += s_op;
        });
      }
    }
  });
}

void check(const torch::Tensor& t, const char* name, int64_t dim) {
  TORCH_CHECK(t.device().is_cpu(), name, " must be a CPU tensor");
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
  TORCH_CHECK(t.dim() == dim, name, " must have ", dim, " dimensions");
}

std::vector<torch::Tensor> forward(torch::Tensor means2d, torch::Tensor conics, torch::Tensor opacities,
                                   torch::Tensor values, torch::Tensor gi, torch::Tensor ranges, int64_t nx,
                                   int64_t ny, int64_t ts, int64_t width, int64_t height, double alpha_min,
                                   double alpha_max, double t_min) {
  check(means2d, "means2d", 2);
  check(conics, "conics", 2);
  check(opacities, "opacities", 1);
  check(values, "values", 2);
  check(gi, "gi", 1);
  check(ranges, "ranges", 1);
  TORCH_CHECK(ranges.size(0) == nx * ny + 1, "ranges must have one entry per tile plus one");
  TORCH_CHECK(ts >= 1 && ts <= L, "tile size must be 1 to ", L);
  const int64_t K = values.size(1);
  auto out = torch::zeros({height, width, K}, values.options());
  auto t_final = torch::ones({height, width}, values.options());
  auto last = torch::zeros({height, width}, values.options().dtype(torch::kInt32));
  const Geometry G{nx, ny, ts, width, height};
  AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "soundmask_raster_forward", [&] {
    forward_impl<scalar_t>(means2d.data_ptr<scalar_t>(), conics.data_ptr<scalar_t>(),
                           opacities.data_ptr<scalar_t>(), values.data_ptr<scalar_t>(), gi.data_ptr<int64_t>(),
                           ranges.data_ptr<int64_t>(), K, G, alpha_min, alpha_max, t_min,
                           out.data_ptr<scalar_t>(), t_final.data_ptr<scalar_t>(), last.data_ptr<int32_t>());
  });
  return {out, t_final, last};
}

std::vector<torch::Tensor> backward(torch::Tensor grad_out, torch::Tensor means2d, torch::Tensor conics,
                                    torch::Tensor opacities, torch::Tensor values, torch::Tensor gi,
                                    torch::Tensor ranges, torch::Tensor t_final, torch::Tensor last, int64_t nx,
                                    int64_t ny, int64_t ts, int64_t width, int64_t height, double alpha_min,
                                    double alpha_max) {
  check(grad_out, "grad_out", 3);
  check(t_final, "t_final", 2);
  check(last, "last", 2);
  const int64_t K = values.size(1), N = values.size(0), P = gi.size(0);
  auto pair_grad = torch::zeros({P, 6 + K}, values.options());
  const Geometry G{nx, ny, ts, width, height};
  AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "soundmask_raster_backward", [&] {
    backward_impl<scalar_t>(grad_out.data_ptr<scalar_t>(), means2d.data_ptr<scalar_t>(),
                            conics.data_ptr<scalar_t>(), opacities.data_ptr<scalar_t>(),
                            values.data_ptr<scalar_t>(), gi.data_ptr<int64_t>(), ranges.data_ptr<int64_t>(), K, G,
                            alpha_min, alpha_max, t_final.data_ptr<scalar_t>(), last.data_ptr<int32_t>(),
                            pair_grad.data_ptr<scalar_t>());
  });
  auto per_gaussian = torch::zeros({N, 6 + K}, values.options()).index_add_(0, gi, pair_grad);
  return {per_gaussian.narrow(1, 0, 2), per_gaussian.narrow(1, 2, 3), per_gaussian.select(1, 5),
          per_gaussian.narrow(1, 6, K)};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "soundmask compiled CPU tile rasterizer (forward and backward)";
  m.def("forward", &forward, "composite: (image (H, W, K), final transmittance (H, W), contributors (H, W))");
  m.def("backward", &backward, "gradients w.r.t. means2d, conics, opacities and values");
}
