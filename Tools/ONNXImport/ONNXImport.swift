// ONNXImport: work in progress.
