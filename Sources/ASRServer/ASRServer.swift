// ASRServer: work in progress; see README.
