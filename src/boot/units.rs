//! Units installed into the image and the initrd (written in the next commits).
