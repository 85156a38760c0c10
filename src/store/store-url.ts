/** The task store's address: `--store` / SUPSUP_STORE (a PostgreSQL URL plus the model's name in the store). */
export interface StoreAddress {
  /** The connection string as `pg` takes it (the `model` parameter removed). */
  connectionString: string;
  model: string;
  /** The URL without its password, for logs. */
  shown: string;
}

/** postgres://user:pass@host:port/db?model=name → the connection and the model name (default "default"). */
export function parseStoreUrl(raw: string): StoreAddress {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`the store URL ${JSON.stringify(raw)} is not a URL: expected postgres://user@host:port/database?model=name`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new Error(`the store URL must start with postgres:// (the task store is PostgreSQL), got ${url.protocol}//`);
  }
  const model = url.searchParams.get('model') ?? 'default';
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(model)) throw new Error(`the store URL's model name ${JSON.stringify(model)} must be 1-64 of A-Z a-z 0-9 _ . -`);
  url.searchParams.delete('model');
  const shown = new URL(url);
  if (shown.password) shown.password = '***';
  shown.searchParams.set('model', model);
  return { connectionString: url.toString(), model, shown: shown.toString() };
}
