// Canonical correlation analysis (Hotelling 1936) between two frozen towers' features: the
// closed-form baseline that needs no training at all (loss.objective cca). With covariances
// Cxx, Cyy (each ridge-regularised by `regularization` times its mean variance, Vinod 1976) and
// the cross-covariance Cxy of centred features, the whitened cross-covariance
// M = Cxx^{-1/2} Cxy Cyy^{-1/2} = U S Vᵀ gives the canonical directions A = Cxx^{-1/2} U and
// B = Cyy^{-1/2} V and the canonical correlations S. Each modality's embedding is its centred
// features through its directions, the k strongest, scaled by S^power (Gong et al. 2014,
// arXiv:1212.4522, weight the dimensions by a power of the correlations for retrieval). At
// regularization → ∞ the whitening is the identity and this becomes the SVD of Cxy (partial least
// squares); at 0 it is plain CCA.
import { eye, noGrad, op, tidy, type Tensor } from '../engine/index.js';

const eigh = op<[Tensor, Tensor]>('aten::linalg_eigh');
const svd = op<[Tensor, Tensor, Tensor]>('aten::linalg_svd');

export interface CcaOptions {
  /** Canonical dimensions kept, at most min(dx, dy) (default that minimum). */
  dim?: number;
  /** Ridge added to each covariance, as a fraction of its mean variance (default 1e-3). */
  regularization?: number;
  /** Each dimension scaled by its canonical correlation to this power (default 1; 0 leaves them whitened). */
  power?: number;
}

/** A fitted CCA: embed x as (x − meanX) · projectionX, likewise y. */
export interface CcaFit {
  meanX: Tensor;
  meanY: Tensor;
  /** float32 [dx, dim], the correlation scaling included. */
  projectionX: Tensor;
  /** float32 [dy, dim]. */
  projectionY: Tensor;
  /** The canonical correlations, strongest first. */
  correlations: number[];
}

/**
 * CCA between paired rows of x [n, dx] and y [n, dy], computed in float64.
 *
 * @example
 * const fit = fitCca(imageFeatures, textFeatures, { dim: 128 });
 * const zImage = imageFeatures.sub(fit.meanX).matmul(fit.projectionX); // [n, 128], comparable with
 * const zText = textFeatures.sub(fit.meanY).matmul(fit.projectionY);   // text's by cosine
 */
export function fitCca(x: Tensor, y: Tensor, options: CcaOptions = {}): CcaFit {
  const [n, dx] = x.shape as [number, number];
  const dy = y.shape[1]!;
  if (x.ndim !== 2 || y.ndim !== 2 || y.shape[0] !== n)
    throw new RangeError(
      `fitCca: x and y must be [n, dx] and [n, dy] with the same n, got [${x.shape.join(', ')}] and [${y.shape.join(', ')}]`,
    );
  if (n < 2) throw new RangeError(`fitCca: needs at least 2 pairs, got ${n}`);
  const dim = options.dim ?? Math.min(dx, dy);
  if (!Number.isInteger(dim) || dim < 1 || dim > Math.min(dx, dy))
    throw new RangeError(`fitCca: dim must be an integer from 1 to min(dx, dy) = ${Math.min(dx, dy)}, got ${dim}`);
  const regularization = options.regularization ?? 1e-3;
  if (!(regularization >= 0)) throw new RangeError(`fitCca: regularization must be ≥ 0, got ${regularization}`);
  const power = options.power ?? 1;
  return noGrad(() =>
    tidy(() => {
      const xd = x.double();
      const yd = y.double();
      const meanX = xd.mean([0], true);
      const meanY = yd.mean([0], true);
      const xc = xd.sub(meanX);
      const yc = yd.sub(meanY);
      const whitenX = inverseSqrt(
        ridge(
          xc
            .t()
            .matmul(xc)
            .div(n - 1),
          regularization,
        ),
      );
      const whitenY = inverseSqrt(
        ridge(
          yc
            .t()
            .matmul(yc)
            .div(n - 1),
          regularization,
        ),
      );
      const cxy = xc
        .t()
        .matmul(yc)
        .div(n - 1);
      const [u, s, vh] = svd(whitenX.matmul(cxy).matmul(whitenY), false, null);
      const correlations = s.narrow(0, 0, dim);
      const scale = correlations.pow(power).unsqueeze(0);
      return {
        meanX: meanX.squeeze(0).float(),
        meanY: meanY.squeeze(0).float(),
        projectionX: whitenX
          .matmul(u.narrow(1, 0, dim))
          .mul(scale)
          .float(),
        projectionY: whitenY
          .matmul(vh.narrow(0, 0, dim).t())
          .mul(scale)
          .float(),
        correlations: correlations.toFlatArray(),
      };
    }),
  );
}

/** c + regularization · mean(diag c) · I. */
function ridge(c: Tensor, regularization: number): Tensor {
  const d = c.shape[0]!;
  const identity = eye(d, { dtype: 'float64', device: c.device });
  const meanVariance = (c.mul(identity).sum().item() as number) / d;
  return c.add(identity.mul(regularization * meanVariance));
}

/** C^{-1/2} of a symmetric positive (semi-)definite C, through its eigendecomposition; eigenvalues below 1e-12·max are treated as that. */
function inverseSqrt(c: Tensor): Tensor {
  const [values, vectors] = eigh(c, 'L');
  const floor = Math.max((values.max().item() as number) * 1e-12, Number.MIN_VALUE);
  return vectors.mul(values.clamp(floor).rsqrt().unsqueeze(0)).matmul(vectors.t());
}
