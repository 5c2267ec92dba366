"""pg_verifybackup's error messages, as drill and recover report them."""

from pgsafe.recovery.prove import _problems


def test_a_line_break_in_an_archive_name_does_not_cut_the_message() -> None:
    # pg_verifybackup 18.6 can print garbage for the archive's name; a newline among
    # it once cut "but not in the manifest" off the report (seen on CI)
    err = (
        'pg_verifybackup: error: file "evil/planted" is present in archive "\x90U\n'
        'n\xffU" but not in the manifest\n'
    )
    out = _problems(err)
    assert "evil/planted" in out and "not in the manifest" in out, out
    assert "\n" not in out


def test_each_message_counts_once_and_only_three_are_shown() -> None:
    err = "".join(f'pg_verifybackup: error: checksum mismatch for file "f{i}"\n' for i in range(5))
    out = _problems(err)
    assert out.count("checksum mismatch") == 3 and "(and 2 more)" in out, out


def test_no_error_is_no_problem() -> None:
    assert _problems("backup successfully verified\n") == ""
