//! Seeded synthetic AffectNet-format datasets whose faces encode their labels.
