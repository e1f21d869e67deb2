

def ${name}(${signature}):
    """${doc}"""
${body}
