// The named objectives of the study: each is one value of the loss weights (src/align/loss.ts says
// what each weight switches on). They are data, like the presets: a config's loss.objective names
// one, and the config's explicit weights override it one by one (src/run/model_setup.ts).
import type { AlignmentLossWeights } from '../align/loss.js';

/** The named objectives compared in the study. */
export const ALIGNMENT_OBJECTIVES = {
  /** Heterogeneous BYOL: intra- and cross-modal terms. */
  byol: { intraWeight: 1, crossWeight: 1, infoNceWeight: 0 },
  /** Independent BYOL per modality (no alignment signal at all: the lower bound). */
  intraOnly: { intraWeight: 1, crossWeight: 0, infoNceWeight: 0 },
  /** Only the cross-modal regression. */
  crossOnly: { intraWeight: 0, crossWeight: 1, infoNceWeight: 0 },
  /** CLIP's contrastive objective alone (the baseline). */
  infoNce: { intraWeight: 0, crossWeight: 0, infoNceWeight: 1 },
  /** Heterogeneous BYOL plus InfoNCE. */
  byolInfoNce: { intraWeight: 1, crossWeight: 1, infoNceWeight: 1 },
  /**
   * Heterogeneous BYOL with VICReg's variance and covariance safeguards (no negatives). The weights
   * keep VICReg's ratio invariance : variance : covariance = 25 : 25 : 1.
   */
  byolVicReg: { intraWeight: 1, crossWeight: 1, infoNceWeight: 0, varianceWeight: 1, covarianceWeight: 0.04 },
  /** Only the cross-modal regression, with VICReg's variance and covariance safeguards. */
  crossVicReg: { intraWeight: 0, crossWeight: 1, infoNceWeight: 0, varianceWeight: 1, covarianceWeight: 0.04 },
  /** VICReg itself across modalities (invariance : variance : covariance = 25 : 25 : 1): negative-free, not BYOL. */
  vicReg: { intraWeight: 0, crossWeight: 0, infoNceWeight: 0, invarianceWeight: 1, varianceWeight: 1, covarianceWeight: 0.04 },
  /** BYOL's cross term plus all three VICReg terms: the cross-modal regression with VICReg's alignment beside it. */
  crossPlusVicReg: { intraWeight: 0, crossWeight: 1, infoNceWeight: 0, invarianceWeight: 1, varianceWeight: 1, covarianceWeight: 0.04 },
  /**
   * crossPlusVicReg with the cross term at 0.25: the best negative-free BYOL-based configuration
   * measured on the icon data set (with τ_base 0.996; docs/align.md). VICReg's invariance term does
   * most of the aligning; BYOL's cross term adds the online-prediction/target pairing beside it.
   */
  lightCrossPlusVicReg: {
    intraWeight: 0,
    crossWeight: 0.25,
    infoNceWeight: 0,
    invarianceWeight: 1,
    varianceWeight: 1,
    covarianceWeight: 0.04,
  },
} as const satisfies Record<string, AlignmentLossWeights>;

/** The name of one of the study's objectives (a config's loss.objective). */
export type ObjectiveName = keyof typeof ALIGNMENT_OBJECTIVES;
