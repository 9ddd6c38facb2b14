"""Claims on quadratics: stability thresholds and optimal rates (THEORY §1)."""
