"""Operations on the domain. They take the acting user and plain data, never `request`;
they flush but do not commit: the face that called them commits once (or rolls back)."""
