//! Pure synchronous conversion of images into named variants
