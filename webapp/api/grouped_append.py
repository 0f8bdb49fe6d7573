"""Appends of concurrent requests to one Redis list, one RPUSH per group.

Under load, the requests of a web process that arrive while an RPUSH is on its
way join the next one instead of making a round trip each: one command, one
send and one receive for the whole group. A request still returns only once
its own items are in Redis, so nothing is acknowledged before it is stored. A
request that finds no RPUSH on its way sends its own at once: no waiting for
company.
"""
import threading


class _Group:
    def __init__(self):
        self.items = []
        self.finished = False
        self.length = None  # the list's length after the group's RPUSH
        self.error = None


class GroupedAppend:
    def __init__(self, key):
        self.key = key
        self._changed = threading.Condition()
        self._open = _Group()
        self._pushing = False

    def append(self, redis, items):
        """RPUSH `items` to the list; returns the list's length just after the last of them."""
        with self._changed:
            group = self._open
            group.items.extend(items)
            after_mine = len(group.items)
            while self._pushing and not group.finished:
                self._changed.wait()
            leads = not group.finished
            if leads:
                self._pushing = True
                self._open = _Group()
        if leads:
            self._push(redis, group)
        if group.error is not None:
            raise group.error
        return group.length - (len(group.items) - after_mine)

    def _push(self, redis, group):
        try:
            group.length = redis.rpush(self.key, *group.items)
        except Exception as error:  # every request of the group answers with it
            group.error = error
        with self._changed:
            group.finished = True
            self._pushing = False
            self._changed.notify_all()
