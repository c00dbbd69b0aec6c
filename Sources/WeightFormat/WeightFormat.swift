// WeightFormat: work in progress; see README.
