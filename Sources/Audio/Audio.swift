// Audio: work in progress; see README.
