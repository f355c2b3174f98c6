/**
 * Entities from rows of hand-written SQL. TypeORM's query builder would build, run and map the
 * same rows at several times the cost of the statement itself; here a statement selects an
 * entity's columns under a prefix (selectColumns) and each row becomes the entity (hydrate),
 * every value passed through the driver exactly as TypeORM's own reads do.
 */
import type { DataSource, EntityMetadata, EntityTarget, ObjectLiteral } from 'typeorm';
import type { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata';

interface Mapping {
  metadata: EntityMetadata;
  columns: { key: string; column: ColumnMetadata }[];
}

/** Per data source, entity and prefix: the metadata lookup is done once. */
const mappings = new WeakMap<DataSource, Map<EntityTarget<ObjectLiteral>, Map<string, Mapping>>>();

function mappingOf(ds: DataSource, entity: EntityTarget<ObjectLiteral>, prefix: string): Mapping {
  let byEntity = mappings.get(ds);
  if (!byEntity) {
    byEntity = new Map();
    mappings.set(ds, byEntity);
  }
  let byPrefix = byEntity.get(entity);
  if (!byPrefix) {
    byPrefix = new Map();
    byEntity.set(entity, byPrefix);
  }
  let mapping = byPrefix.get(prefix);
  if (!mapping) {
    const metadata = ds.getMetadata(entity);
    mapping = {
      metadata,
      columns: metadata.columns.map((column) => ({ key: `${prefix}${column.databaseName}`, column })),
    };
    byPrefix.set(prefix, mapping);
  }
  return mapping;
}

/** `alias.column AS "prefixcolumn", ...` for every column of the entity. */
export function selectColumns(
  ds: DataSource,
  entity: EntityTarget<ObjectLiteral>,
  alias: string,
  prefix: string,
): string {
  return mappingOf(ds, entity, prefix)
    .columns.map(({ key, column }) => `${alias}.${column.databaseName} AS "${key}"`)
    .join(', ');
}

/** The entity whose columns `row` holds under `prefix` (as selected by selectColumns). */
export function hydrate<T extends ObjectLiteral>(
  ds: DataSource,
  entity: EntityTarget<T>,
  row: Record<string, unknown>,
  prefix: string,
): T {
  const { metadata, columns } = mappingOf(ds, entity, prefix);
  const instance = metadata.create() as T;
  for (const { key, column } of columns)
    column.setEntityValue(instance, ds.driver.prepareHydratedValue(row[key], column));
  return instance;
}
