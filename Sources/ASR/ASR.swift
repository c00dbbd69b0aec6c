// ASR: work in progress; see README.
