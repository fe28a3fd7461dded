-- DDL storm: partitions of the protected table parts, created, detached,
-- attached and dropped while tenants write to its permanent partitions
DROP TABLE IF EXISTS parts_x_:client_id, parts_y_:client_id;
CREATE TABLE parts_x_:client_id PARTITION OF parts FOR VALUES IN (1000 + :client_id);
ALTER TABLE parts DETACH PARTITION parts_x_:client_id;
CREATE TABLE parts_y_:client_id (LIKE parts);
ALTER TABLE parts ATTACH PARTITION parts_y_:client_id FOR VALUES IN (2000 + :client_id);
DROP TABLE parts_x_:client_id, parts_y_:client_id;
