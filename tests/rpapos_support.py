"""What the RPApos sync tests share: the fake tenant's login and a small catalog."""

from local.fake_rpapos import Volume

USER = "admin"
PASSWORD = "rest-Passw0rd"
PAGE_SIZE = 4


def small_volume(documents: int = 3) -> Volume:
    """A few pages per entity at PAGE_SIZE."""
    return Volume(
        plus=6, plu_grupos=2, skus=4, sku_grupos=2, produccion_grupos=1, unidades=2, monedas=2, bodegas=2,
        proveedores=2, areas=2, mesas_per_area=3, personas=3, usuarios=2, batches=3, tipos_gestion=2,
        estaciones=1, dispositivos=1, documents=documents, modifier_groups=2, items_per_group=2,
    )  # fmt: skip
