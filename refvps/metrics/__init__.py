"""Pure metric kernels on numpy arrays: no file I/O, no dataset knowledge."""
from refvps.metrics.boundary import (Boundary, boundary_of, boundary_radius, contour_accuracy,
                                     f_from_boundaries)
from refvps.metrics.region import region_counts, region_similarity
from refvps.metrics.sequence import (DECAY_MODES, decay_with_check, sequence_decay, sequence_mean,
                                     sequence_recall, temporal_consistency)


def jf_score(j: float, f: float) -> float:
    """J&F as every official script computes it: the plain mean of J and F."""
    return (j + f) / 2


__all__ = ["Boundary", "DECAY_MODES", "boundary_of", "boundary_radius", "contour_accuracy",
           "decay_with_check", "f_from_boundaries", "jf_score", "region_counts",
           "region_similarity", "sequence_decay", "sequence_mean", "sequence_recall",
           "temporal_consistency"]
