package pgtest

// ShadowingObjects is what an administrator (not the agent) may have in
// public, for tests of the write guard's function and operator resolution
// (docs/architecture.md, Write statements: the read rules everywhere): a
// SECURITY DEFINER upper(integer) and an operator + on (bigint, text) that
// count their calls in ShadowCalls (nextval, which no rollback undoes) and
// raise an error carrying the seed's secrets. Unqualified, upper(id::int)
// and id + notes pick them over pg_catalog's, whatever the search path's
// order. They are IMMUTABLE so that index expressions, CHECKs and
// generated columns call them too.
const ShadowingObjects = `
CREATE SEQUENCE public.shadow_calls;
CREATE FUNCTION public.upper(integer) RETURNS text
    LANGUAGE plpgsql IMMUTABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    PERFORM nextval('public.shadow_calls');
    RAISE EXCEPTION 'leak: %', (SELECT string_agg(token, ',') FROM public.secrets);
END $$;
CREATE FUNCTION public.shadow_plus(bigint, text) RETURNS bigint
    LANGUAGE plpgsql IMMUTABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    PERFORM nextval('public.shadow_calls');
    RAISE EXCEPTION 'leak: %', (SELECT string_agg(token, ',') FROM public.secrets);
END $$;
CREATE OPERATOR public.+ (LEFTARG = bigint, RIGHTARG = text, FUNCTION = public.shadow_plus);`

// ShadowCalls is the sequence ShadowingObjects count their calls in.
const ShadowCalls = "public.shadow_calls"
