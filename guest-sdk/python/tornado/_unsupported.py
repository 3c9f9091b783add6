def unsupported(module, name):
    return AttributeError(
        "%s.%s is not supported by Waterspout's Tornado compatibility package; "
        "see guest-sdk/python/README.md for what is" % (module, name)
    )
