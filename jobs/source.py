"""An upload's raw bytes, streamed from PostgreSQL one stored piece at a time."""
import io
from bisect import bisect_right
from itertools import accumulate


def read_piece(connection, upload_id, seq):
    """The stored piece `seq` of the upload, or None past the last one."""
    # Binary: as text, bytea travels as hex, and decoding it took 1.1 s per 100 MB.
    row = connection.cursor(binary=True).execute(
        "SELECT data FROM upload_pieces WHERE upload_id = %s AND seq = %s", (upload_id, seq)).fetchone()
    return None if row is None else memoryview(row[0])


class PieceStream(io.RawIOBase):
    """A readable binary stream over upload_pieces."""

    def __init__(self, connection, upload_id):
        self.connection = connection
        self.upload_id = upload_id
        self.next_seq = 0
        self.piece = memoryview(b"")

    def readable(self):
        return True

    def readinto(self, target):
        if not self.piece and not self._fetch_next_piece():
            return 0
        size = min(len(target), len(self.piece))
        target[:size] = self.piece[:size]
        self.piece = self.piece[size:]
        return size

    def _fetch_next_piece(self):
        piece = read_piece(self.connection, self.upload_id, self.next_seq)
        if piece is None:
            return False
        self.piece = piece
        self.next_seq += 1
        return True


class SeekablePieceStream(io.RawIOBase):
    """A binary stream over upload_pieces that can seek, as a ZIP reader needs
    (an archive's directory is at its end); it holds one piece at a time."""

    def __init__(self, connection, upload_id):
        self.connection = connection
        self.upload_id = upload_id
        sizes = connection.execute("SELECT octet_length(data) FROM upload_pieces WHERE upload_id = %s "
                                   "ORDER BY seq", (upload_id,)).fetchall()
        self.starts = list(accumulate((size for size, in sizes), initial=0))    # the last one is the end
        self.position = 0
        self.seq = None
        self.piece = memoryview(b"")

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self.position

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.starts[-1]}[whence]
        self.position = max(base + offset, 0)
        return self.position

    def readinto(self, target):
        seq = bisect_right(self.starts, self.position) - 1
        if seq >= len(self.starts) - 1:
            return 0
        if seq != self.seq:
            self.piece, self.seq = read_piece(self.connection, self.upload_id, seq), seq
        start = self.position - self.starts[seq]
        size = min(len(target), len(self.piece) - start)
        target[:size] = self.piece[start:start + size]
        self.position += size
        return size
