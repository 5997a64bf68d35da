"""Attack detection: state estimation with bad-data tests (WLS), scored against ground-truth labels."""
