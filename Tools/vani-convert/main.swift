print("vani-convert: work in progress")
