"""Care plans: treatment phases (stepped care) and care-team reviews (therapeutic inertia)."""
