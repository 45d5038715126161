"""Analysis of benchmark results: aggregate RL metrics with stratified-bootstrap confidence intervals."""
