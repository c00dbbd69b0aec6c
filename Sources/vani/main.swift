print("vani: work in progress")
