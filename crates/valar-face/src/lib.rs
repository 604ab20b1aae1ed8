//! Face preprocessing shared by prepare and predict: decode, crop, grayscale, resize.
