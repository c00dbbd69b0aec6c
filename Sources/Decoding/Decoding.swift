// Decoding: work in progress; see README.
