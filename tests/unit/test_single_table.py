"""Which archive entries belong to a table (pure parsing of pg_restore output)."""

from __future__ import annotations

from pgsafe.logical.single_table import belongs, owned_sequences, parse_script, toc_lines
from pgsafe.logical.tables import Table

SCRIPT = """
--
-- Name: important_data; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.important_data (id integer NOT NULL);

--
-- Name: important_data_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: postgres
--

ALTER SEQUENCE public.important_data_id_seq OWNED BY public.important_data.id;

--
-- Name: important_data important_data_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.important_data ADD CONSTRAINT important_data_pkey PRIMARY KEY (id);

--
-- Name: important_data_customer; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX important_data_customer ON public.important_data USING btree (customer);

--
-- Name: other_idx; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX other_idx ON public.important_data_archive USING btree (customer);

--
-- Name: My table x; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX "My table x" ON public."My table" USING btree (id);
"""


def test_entries_that_belong_to_the_table() -> None:
    entries = parse_script(SCRIPT)
    t = Table("public", "important_data")
    names = {(e.type, e.name) for e in entries if belongs(e, t)}
    assert names == {
        ("TABLE", "important_data"),
        ("CONSTRAINT", "important_data important_data_pkey"),
        ("INDEX", "important_data_customer"),
    }
    assert owned_sequences(entries, t) == {"important_data_id_seq"}


def test_quoted_table_names_match_their_indexes() -> None:
    entries = parse_script(SCRIPT)
    names = {e.name for e in entries if belongs(e, Table("public", "My table"))}
    assert names == {"My table x"}


def test_toc_lines_are_picked_by_type_schema_name_owner() -> None:
    listing = (
        "215; 1259 16386 TABLE public important_data postgres\n"
        "3350; 0 16386 TABLE DATA public important_data postgres\n"
        "3351; 0 16390 TABLE DATA public important_data_archive postgres\n"
    )
    got = toc_lines(listing, {("TABLE DATA", "public", "important_data", "postgres")})
    assert got == ["3350; 0 16386 TABLE DATA public important_data postgres"]
