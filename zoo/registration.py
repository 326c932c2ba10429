"""A name -> class table filled by a class decorator where each class is defined (the timm way);
the model kinds (vaezoo.models.registry) and the objectives (vaezoo.train.objectives.base) use one."""

from __future__ import annotations


class Registry(dict):
    def __init__(self, what: str):
        super().__init__()
        self.what = what

    def register(self, name: str):
        """Class decorator: the class is the one ``name`` picks."""

        def add(cls):
            if name in self:
                raise ValueError(f"{self.what} {name!r} is registered twice ({self[name].__name__}, {cls.__name__})")
            self[name] = cls
            return cls

        return add
