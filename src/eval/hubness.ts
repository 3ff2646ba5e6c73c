// Hubs in a cross-modal space (Radovanović et al. 2010, "Hubs in space", JMLR 11): a gallery item
// that is the nearest neighbour of many queries takes the top rank from their right answers. In a
// space where each modality keeps a shared direction of its own (the "modality gap", Liang et al.
// 2022, arXiv:2203.02053), the mean of the unit-length embeddings is long and a few gallery items
// near that direction become hubs.
import { F, noGrad, tidy, type Tensor } from '../engine/index.js';

export interface Hubness {
  /** Captions whose nearest image (cosine) is the most popular image. */
  maxCaptionsPerNearestImage: number;
  /** Images that are the nearest image of at least one caption. */
  imagesEverNearest: number;
  /** Images whose nearest caption is the most popular caption. */
  maxImagesPerNearestCaption: number;
  /** Captions that are the nearest caption of at least one image. */
  captionsEverNearest: number;
  /** ‖mean of the l2-normalised image embeddings‖: 0 when they spread evenly, 1 when all are one direction. */
  meanUnitImageNorm: number;
  /** The same for the caption embeddings. */
  meanUnitCaptionNorm: number;
}

/**
 * Nearest-neighbour concentration both ways and the length of each modality's mean unit embedding.
 * Ties for the nearest go to the lower index.
 *
 * @example
 * const h = hubness(imageEmbeddings, captionEmbeddings); // [Ni, d], [Nc, d]
 * console.log(h.maxCaptionsPerNearestImage, h.imagesEverNearest, h.meanUnitImageNorm);
 */
export function hubness(imageEmbeddings: Tensor, captionEmbeddings: Tensor): Hubness {
  if (imageEmbeddings.ndim !== 2 || captionEmbeddings.ndim !== 2 || imageEmbeddings.shape[1] !== captionEmbeddings.shape[1]) {
    throw new RangeError(
      `hubness: imageEmbeddings [${imageEmbeddings.shape.join(', ')}] and captionEmbeddings [${captionEmbeddings.shape.join(', ')}] ` +
        'must be [Ni, d] and [Nc, d] with one d',
    );
  }
  const nImages = imageEmbeddings.shape[0]!;
  const nCaptions = captionEmbeddings.shape[0]!;
  if (nImages === 0 || nCaptions === 0) throw new RangeError('hubness: needs at least one image and one caption');
  return noGrad(() =>
    tidy(() => {
      const images = F.normalize(imageEmbeddings.to('float64'), 1);
      const captions = F.normalize(captionEmbeddings.to('float64'), 1);
      const similarity = captions.matmul(images.t()); // [Nc, Ni]
      const counts = (nearest: number[], size: number): number[] => {
        const c = new Array<number>(size).fill(0);
        for (const i of nearest) c[i]!++;
        return c;
      };
      // argmax returns the first of equal maxima (PyTorch's documented behaviour)
      const perImage = counts(similarity.argmax(1).toFlatArray(), nImages);
      const perCaption = counts(similarity.argmax(0).toFlatArray(), nCaptions);
      return {
        maxCaptionsPerNearestImage: Math.max(...perImage),
        imagesEverNearest: perImage.filter((n) => n > 0).length,
        maxImagesPerNearestCaption: Math.max(...perCaption),
        captionsEverNearest: perCaption.filter((n) => n > 0).length,
        meanUnitImageNorm: images.mean([0]).norm().item(),
        meanUnitCaptionNorm: captions.mean([0]).norm().item(),
      };
    }),
  );
}
