def register(r):
    pass
