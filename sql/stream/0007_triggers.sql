-- Stream engine migration 7: PgQ's table-change trigger functions.
--
--   CREATE TRIGGER t AFTER INSERT OR UPDATE OR DELETE ON my_table
--     FOR EACH ROW EXECUTE FUNCTION pgque.jsontriga('my_stream' [, 'pkey=a,b'] [, 'SKIP'] [, 'ignore=c,d']);
--
-- Arguments: the stream name first, then options: `pkey=<cols>` (default:
-- the table's primary key), `ignore=<cols>` (left out of the payload),
-- `SKIP` (in a BEFORE trigger: record the event, skip the change itself).
-- Every event carries ev_type `<op>:<pkey cols>` (op I/U/D, PgQ's format),
-- ev_extra1 = the qualified table name; the payload format differs:
--   jsontriga  ev_data = the row as JSON
--   logutriga  ev_data = the row urlencoded (col=val&col2=val2; NULL = bare name)
--   sqltriga   ev_data = an SQL fragment (INSERT: (cols) values (...);
--              UPDATE: col=val,… where pk=…; DELETE: pk=…)
-- An UPDATE that changes no column (after `ignore`) produces no event.

CREATE FUNCTION @schema@._trigger_event(i_format text, tg_op text, tg_relid oid, tg_args text[],
                                        new_row jsonb, old_row jsonb) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  -- TG_ARGV arrives 0-based; a slice renumbers it from 1.
  args    text[] := tg_args[array_lower(tg_args, 1):array_upper(tg_args, 1)];
  stream  text := args[1];
  pkey    text[];
  ignore  text[] := '{}';
  skip    boolean := false;
  a       text;
  rowj    jsonb := coalesce(new_row, old_row);
  op      text := left(tg_op, 1);
  data    text;
  tbl     text;
  k       text;
BEGIN
  IF stream IS NULL THEN
    RAISE EXCEPTION '%: the first trigger argument must be the stream name', i_format;
  END IF;
  FOREACH a IN ARRAY coalesce(args[2:], '{}') LOOP
    IF a = 'SKIP' THEN
      skip := true;
    ELSIF a LIKE 'pkey=%' THEN
      pkey := string_to_array(substr(a, 6), ',');
    ELSIF a LIKE 'ignore=%' THEN
      ignore := string_to_array(substr(a, 8), ',');
    END IF;
  END LOOP;
  IF pkey IS NULL THEN
    SELECT array_agg(att.attname::text ORDER BY k.ord) INTO pkey
      FROM pg_index i
      CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
      JOIN pg_attribute att ON att.attrelid = i.indrelid AND att.attnum = k.attnum
     WHERE i.indrelid = tg_relid AND i.indisprimary;
  END IF;
  pkey := coalesce(pkey, '{}');
  IF cardinality(ignore) > 0 THEN
    rowj := rowj - ignore;
    new_row := new_row - ignore;
    old_row := old_row - ignore;
  END IF;
  IF tg_op = 'UPDATE' AND new_row = old_row THEN
    RETURN skip;
  END IF;
  tbl := tg_relid::regclass::text;
  IF i_format = 'json' THEN
    data := rowj::text;
  ELSIF i_format = 'urlenc' THEN
    SELECT string_agg(@schema@._urlencode(key) || CASE WHEN jsonb_typeof(value) = 'null' THEN ''
                        ELSE '=' || @schema@._urlencode(value #>> '{}') END, '&')
      INTO data FROM jsonb_each(rowj);
  ELSE
    IF tg_op = 'INSERT' THEN
      SELECT '(' || string_agg(quote_ident(key), ',') || ') values (' || string_agg(quote_nullable(value #>> '{}'), ',') || ')'
        INTO data FROM jsonb_each(rowj);
    ELSE
      SELECT string_agg(quote_ident(p) || '=' || quote_nullable(old_row #>> ARRAY[p]), ' and ')
        INTO k FROM unnest(pkey) p;
      IF tg_op = 'UPDATE' THEN
        SELECT string_agg(quote_ident(key) || '=' || quote_nullable(value #>> '{}'), ',')
          INTO data FROM jsonb_each(new_row) WHERE NOT (old_row ? key) OR old_row -> key IS DISTINCT FROM value;
        data := data || ' where ' || coalesce(k, 'true');
      ELSE
        data := coalesce(k, 'true');
      END IF;
    END IF;
  END IF;
  PERFORM @schema@.insert_event(stream, op || ':' || array_to_string(pkey, ','), data, tbl, NULL, NULL, NULL);
  RETURN skip;
END
$$;

CREATE FUNCTION @schema@._urlencode(t text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT string_agg(CASE WHEN c ~ '^[A-Za-z0-9_.~-]$' THEN c
                         ELSE (SELECT string_agg('%' || upper(lpad(to_hex(b), 2, '0')), '')
                                 FROM (SELECT get_byte(convert_to(c, 'UTF8'), i) AS b
                                         FROM generate_series(0, octet_length(c) - 1) i) x) END, '' ORDER BY n)
    FROM regexp_split_to_table(t, '') WITH ORDINALITY AS s(c, n)
$$;

CREATE FUNCTION @schema@.jsontriga() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  skip boolean;
BEGIN
  skip := @schema@._trigger_event('json', TG_OP, TG_RELID, TG_ARGV,
            CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END, CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END);
  IF skip AND TG_WHEN = 'BEFORE' THEN RETURN NULL; END IF;
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END
$$;

CREATE FUNCTION @schema@.logutriga() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  skip boolean;
BEGIN
  skip := @schema@._trigger_event('urlenc', TG_OP, TG_RELID, TG_ARGV,
            CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END, CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END);
  IF skip AND TG_WHEN = 'BEFORE' THEN RETURN NULL; END IF;
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END
$$;

CREATE FUNCTION @schema@.sqltriga() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  skip boolean;
BEGIN
  skip := @schema@._trigger_event('sql', TG_OP, TG_RELID, TG_ARGV,
            CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END, CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END);
  IF skip AND TG_WHEN = 'BEFORE' THEN RETURN NULL; END IF;
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END
$$;

SELECT @schema@._apply_grants();
