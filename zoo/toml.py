"""TOML reading on every supported Python: the standard library's ``tomllib`` from 3.11, the ``tomli``
package (its origin, same API) on 3.10."""

try:
    from tomllib import TOMLDecodeError, load, loads
except ModuleNotFoundError:   # Python 3.10
    from tomli import TOMLDecodeError, load, loads

__all__ = ["TOMLDecodeError", "load", "loads"]
