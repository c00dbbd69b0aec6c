// TensorModule: work in progress; see README.
